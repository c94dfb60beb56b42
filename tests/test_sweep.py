"""Whole W&B sweep files: method, metric, early_terminate, run_cap, ignored keys, and the --dry-run CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FASHION_DIR

from tune_mlp.search.cli import main as search_main
from tune_mlp.search.plan import SearchOptions, describe_plan, keys_line, search_plan
from tune_mlp.search.space import Hyperband, load_sweep
from tune_mlp.search.tune_space import to_tune_space

REPO = Path(__file__).resolve().parent.parent


def plan_search(sweep, flags=None):  # the plan the CLI makes of this file and these flags
    return search_plan(SearchOptions(space=str(sweep.path), **(flags or {})))


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return str(path)


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tune_mlp.search", "--dry-run", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_search_key_is_read(tmp_path) -> None:
    sweep = load_sweep(
        write(
            tmp_path,
            """
program: train.py
project: fashion
entity: me
name: my sweep
description: x
command: [python, train.py]
method: random
metric: {name: validation_loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 2, strict: true}
run_cap: 9
parameters:
  lr: {values: [0.1, 0.01]}
""",
        )
    )
    assert (sweep.method, sweep.metric, sweep.mode, sweep.run_cap) == ("random", "val_loss", "min", 9)
    assert sweep.hyperband == Hyperband(grace_period=2, reduction_factor=2, max_t=None)
    assert sweep.ignored == ("program", "project", "entity", "name", "description", "command")
    assert keys_line(sweep).endswith(
        "used method, metric, early_terminate, run_cap, parameters; "
        "ignored: program, project, entity, name, description, command (not search settings)"
    )
    plan = plan_search(sweep)
    assert (plan.searcher, plan.samples, plan.grace_period, plan.reduction_factor, plan.max_epochs) == (
        "random",
        9,
        2,
        2,
        30,
    )
    flags = plan_search(sweep, {"samples": 4, "grace_period": 5, "max_epochs": 12})
    assert (flags.samples, flags.grace_period, flags.max_epochs, flags.reduction_factor) == (4, 5, 12, 2)


@pytest.mark.parametrize(
    ("name", "metric", "mode"),
    [
        ("val_acc", "val_accuracy", "max"),
        ("validation_accuracy", "val_accuracy", "max"),
        ("accuracy", "val_accuracy", "max"),
        ("val_loss", "val_loss", "min"),
        ("loss", "val_loss", "min"),
        ("train_loss", "train_loss", "min"),
    ],
)
def test_metric_names_users_write_and_the_goal_default(tmp_path, name: str, metric: str, mode: str) -> None:
    sweep = load_sweep(write(tmp_path, f"metric: {{name: {name}}}\nparameters:\n  lr: {{values: [0.1, 0.2]}}\n"))
    assert (sweep.metric, sweep.mode) == (metric, mode)
    assert f"no metric.goal: {mode}imize {metric}" in keys_line(sweep)


def test_hyperband_max_iter_and_s_give_the_first_rung_and_max_t(tmp_path) -> None:
    text = "early_terminate: {type: hyperband, max_iter: 27, s: 2}\nparameters:\n  lr: {values: [0.1, 0.2]}\n"
    plan = plan_search(load_sweep(write(tmp_path, text)))
    assert (plan.max_epochs, plan.grace_period, plan.reduction_factor) == (27, 3, 3)  # 27 / 3**2, eta default 3


def test_grid_is_the_product_of_values(tmp_path) -> None:
    text = """
method: grid
run_cap: 3
parameters:
  optimizer: {values: [adam, sgd, nag]}
  num_layers: {min: 1, max: 2}
  hidden_size: {distribution: q_uniform, min: 32, max: 128, q: 32}
  loss: {value: mse}
"""
    sweep = load_sweep(write(tmp_path, text))
    plan = plan_search(sweep)
    space = to_tune_space(sweep.space)
    assert space["hidden_size"] == {"grid_search": [32, 64, 96]}  # W&B's arange leaves max out
    assert space["num_layers"] == {"grid_search": [1, 2]} and space["loss"] == "mse"
    assert (plan.searcher, plan.samples, plan.trials) == ("grid", 1, 18)
    assert "run_cap (a grid runs every combination)" in sweep.ignored


def test_dry_run_cli_shows_grid_random_and_hyperband(tmp_path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("method: grid\nparameters:\n  optimizer: {values: [adam, sgd]}\n  lr: {values: [0.1, 0.01, 1e-3]}")
    out = dry_run("--space", str(grid))
    assert out.returncode == 0, out.stderr
    assert "method: grid -> grid search" in out.stdout and "samples: 1 x grid of 6 = 6 trials" in out.stdout
    assert "learning_rate  grid [0.1, 0.01, 0.001]" in out.stdout

    rand = tmp_path / "random.yaml"
    rand.write_text(
        "method: random\nearly_terminate: {type: hyperband, min_iter: 2, eta: 2}\n"
        "parameters:\n  lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}\n"
    )
    out = dry_run("--space", str(rand))
    assert out.returncode == 0, out.stderr
    assert "method: random -> random search" in out.stdout and "TPE" not in out.stdout
    assert "scheduler: ASHA(time_attr=epoch, max_t=30, grace_period=2, reduction_factor=2)" in out.stdout
    assert "learning_rate  loguniform [0.0001, 0.1]" in out.stdout and "samples: 20" in out.stdout
    out = dry_run("--space", str(rand), "--grace-period", "4", "--samples", "3")  # flags win over the file
    assert "grace_period=4, reduction_factor=2" in out.stdout and "samples: 3" in out.stdout

    bayes = dry_run("--space", "study")
    assert "method: bayes -> HyperOptSearch (TPE" in bayes.stdout
    budgeted = dry_run("--space", "study", "--time-budget", "5m")  # no --max-epochs: the budget decides, <= 100
    assert "max_t=100," in budgeted.stdout
    assert "samples: until the time budget ends (--samples N caps them)" in budgeted.stdout
    assert "time budget: 5m; max_t is fitted to it when the data is loaded (a full typical trial takes at most 50%" in (
        budgeted.stdout
    )


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        ("method: hyper\nparameters: {lr: {values: [1]}}\n", "method: 'hyper'", "choose from bayes, random, grid"),
        ("metric: {name: f1}\nparameters: {lr: {values: [1]}}\n", "metric.name: 'f1'", "use one of val_accuracy"),
        ("metric: {name: loss, goal: up}\nparameters: {lr: {values: [1]}}\n", "metric.goal", "maximize or minimize"),
        ("early_terminat: {}\nparameters: {lr: {values: [1]}}\n", "early_terminat", "did you mean 'early_terminate'"),
        ("early_terminate: {type: hyperband}\nparameters: {lr: {values: [1]}}\n", "early_terminate", "min_iter"),
        ("early_terminate: {type: hyperband, min_iter: 2, eta: 1}\nparameters: {lr: {values: [1]}}\n", "eta", "> 1"),
        ("run_cap: 0\nparameters: {lr: {values: [1]}}\n", "run_cap", ">= 1"),
        ("method: grid\nparameters: {lr: {min: 0.1, max: 0.2}}\n", "parameters.learning_rate", "give it 'values"),
        ("method: random\n", "'parameters:'", "add the hyperparameters"),
    ],
)
def test_unusable_sweep_keys_fail_in_one_line_before_ray(tmp_path, capsys, text: str, key: str, fix: str) -> None:
    path = write(tmp_path, text)
    code, out, err = dry_run_here(capsys, path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
    assert key in lines[0] and fix in lines[0]


def dry_run_here(capsys, path: str) -> tuple[int, str, str]:
    """``main`` in this process (the CLI's own code path, without a new interpreter per file)."""
    code = search_main(["--dry-run", "--space", path])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unusable_file_from_the_real_cli(tmp_path) -> None:
    path = write(tmp_path, "method: grid\nparameters:\n  lr: {distribution: normal, mu: 0.1, sigma: 0.01}\n")
    out = dry_run("--space", path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"error: {path}: parameters.lr: a normal can draw values <= 0, which learning_rate cannot take; "
        "use log_normal (mu = ln of the centre) or log_uniform_values"
    ]


ODD_DOCUMENTS = [
    "",
    "null\n",
    "42\n",
    "[1, 2, 3]\n",
    "parameters: null\n",
    "parameters: [lr, batch_size]\n",
    "parameters: {lr: null}\n",
    "parameters: {lr: [1, 2]}\n",
    "parameters: {lr: {values: null}}\n",
    "parameters: {lr: {values: [true, false]}}\n",
    "parameters: {lr: {min: 1e999, max: 2e999}}\n",
    "parameters: {lr: {value: 1e400}}\n",
    "parameters: {batch_size: {min: 1, max: 99999999999999999999999}}\n",
    "parameters: {lr: {distribution: log_uniform, min: 1, max: 99999}}\n",
    "parameters: {lr: {distribution: normal, mu: 0.1, sigma: 0.01}}\n",
    "parameters: {lr: {distribution: beta, a: -1}}\n",
    "parameters: {lr: {parameters: {}}}\n",
    "parameters: {a: {parameters: {b: {parameters: {c: {values: [1]}}}}}}\n",
    "parameters: {null: {values: [1]}}\n",
    "parameters: {1: {values: [1]}}\n",
    "parameters: {activation: {values: [[relu], {x: 1}]}}\n",
    "parameters: {lr: {values: [0.1], probabilities: [0.5]}}\n",
    "parameters: {lr: {values: [0.1, 0.2], probabilities: [x, y]}}\n",
    "parameters: {lr: {distribution: q_uniform, min: 0.1, max: 0.2, q: 0}}\n",
    "parameters: {lr: {values: ['abc']}}\n",
    "metric: [val_acc]\nparameters: {lr: {values: [0.1]}}\n",
    "early_terminate: yes\nparameters: {lr: {values: [0.1]}}\n",
    "early_terminate: {type: hyperband, min_iter: 1e300}\nparameters: {lr: {values: [0.1]}}\n",
    "run_cap: 1.5\nparameters: {lr: {values: [0.1]}}\n",
    "points_to_evaluate: 5\nparameters: {lr: {values: [0.1, 0.2]}}\n",
    "points_to_evaluate: [null]\nparameters: {lr: {values: [0.1, 0.2]}}\n",
    "parameters: {lr: {values: [0.1]}}\n: : :\n",
    "\x00\x01 binary",
]


def test_odd_yaml_never_gives_a_traceback(tmp_path, capsys) -> None:
    """Each odd document: exit 2 and one ``error:`` line naming the file (an exception would fail the test)."""
    for index, text in enumerate(ODD_DOCUMENTS):
        path = tmp_path / f"odd{index}.yaml"
        path.write_text(text)
        code, out, err = dry_run_here(capsys, str(path))
        lines = err.strip().splitlines()
        assert code == 2, (text, out, err)
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), (text, err)


def test_describe_plan_lists_space_searcher_scheduler_and_samples(tmp_path) -> None:
    sweep = load_sweep(write(tmp_path, "parameters:\n  lr: {value: 0.01}\n  b: {values: [32, 64]}\n"))
    text = describe_plan(plan_search(sweep, {"initial_points": 6, "seed": 1}))
    assert text.splitlines()[1:5] == [
        "method: bayes -> HyperOptSearch (TPE; 6 random points first, seed 1)",
        "metric: val_accuracy (max)",
        "scheduler: ASHA(time_attr=epoch, max_t=30, grace_period=3, reduction_factor=3)",
        "samples: 20",
    ]
    assert "  learning_rate  constant 0.01" in text and "  batch_size     choice [32, 64]" in text


ASSIGNMENT_SWEEP = """
program: train.py
method: random
metric: {name: val_acc, goal: maximize}
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
parameters:
  n_layers: {values: [1]}
  hidden_layer_size: {values: [32]}
  activation: {values: [ReLU, identity]}
  weight_init: {value: Xavier}
  loss: {value: mean_squared_error}
  optimizer: {values: [nag]}
  lr: {values: ["1e-3"]}
  batch_size: {value: 256}
"""


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_smoke_search_from_an_assignment_sweep_names_method_and_scheduler(tmp_path) -> None:
    space = write(tmp_path, ASSIGNMENT_SWEEP)
    out = subprocess.run(
        # The stand-in's trials (no TensorFlow): what is tested is how the sweep file becomes the search; training
        # with its loss (MSE) and initialisation is test_trainer's, a search that trains is the smoke search's.
        [sys.executable, "-m", "tune_mlp.search", "--space", space, "--smoke-test", "--stand-in", "0.5", "--no_wandb"]
        + ["--storage-path", str(tmp_path / "runs"), "--name", "assign"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert f"sweep file {space}: used method, metric, early_terminate, parameters; ignored: program" in out.stdout
    assert (
        "search: method random (random), val_accuracy (max), ASHA max_t 2 grace 1 reduction 2, 2 trials" in out.stdout
    )
    best = json.loads((tmp_path / "runs" / "assign" / "best.json").read_text())
    search = json.loads((tmp_path / "runs" / "assign" / "search.json").read_text())
    assert best["search"] == search and best["trials"] == 2 and best["best"]["metric"] == "val_accuracy"
    assert (search["method"], search["searcher"], search["space"]) == ("random", "random", space)
    assert search["scheduler"] | {} == {
        "type": "asha",
        "time_attr": "epoch",
        "max_t": 2,
        "grace_period": 1,
        "reduction_factor": 2,
        "from_early_terminate": True,
    }
    config = best["best"]["config"]
    assert config["loss"] == "mse" and config["weight_init"] == "xavier"
    assert config["activation"] in ("relu", "identity") and config["learning_rate"] == 0.001


def test_tpe_start_up_trials_default_to_six_then_half_the_slots(capsys) -> None:
    from tune_mlp.search.plan import initial_points_for

    assert [initial_points_for(slots) for slots in (1, 2, 8, 9, 16, 32, 64)] == [6, 6, 6, 6, 8, 16, 32]
    assert initial_points_for(64, given=3) == 3  # --initial-points given wins
    assert search_main(["--dry-run", "--concurrency", "32"]) == 0
    assert "HyperOptSearch (TPE; 16 random points first, seed 0)" in capsys.readouterr().out


def test_the_plan_and_its_dry_run_text_are_made_without_ray(tmp_path) -> None:
    """Flags and the sweep file become the plan before Ray loads (a bad file or flag costs no Ray start-up)."""
    code = (
        "import sys; from tune_mlp.search.plan import SearchOptions, search_plan; "
        "plan = search_plan(SearchOptions(space='study', time_budget='5m', smoke_test=True)); "
        "print(plan.samples, plan.max_epochs, plan.time_budget_s, plan.base_config().dataset, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.split() == ["2", "2", "300.0", "fashion_mnist", "False"]
