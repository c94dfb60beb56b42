"""``--searcher optuna`` carries what the default searcher carries: every W&B distribution, an extension's warm
start, the start-up count. The searchers themselves are the real Optuna and HyperOpt; the search is real Ray."""

from __future__ import annotations

import json
from pathlib import Path

import cloudpickle
import pytest
from conftest import FASHION_DIR, search_cli
from ray import tune

from tune_mlp.config import BOUNDS
from tune_mlp.search.space import OWN_SAMPLER
from tune_mlp.search.tune_space import SweepDistribution

pytest.importorskip("optuna", reason="--searcher optuna needs the peers extra")

from tune_mlp.search.searchers import build  # noqa: E402

MOMENTUM = {"distribution": "normal", "mu": 0.9, "sigma": 0.05}
WIDTH = {"distribution": "categorical_w_probabilities", "values": [16, 32, 64], "probabilities": [0.2, 0.5, 0.3]}
# Two earlier results, as an extension hands them over (tune_mlp.search.results.warm_points).
WARM = [
    {"trial_id": "a", "config": {"learning_rate": 1e-3, "momentum": 0.91, "hidden_size": 64}, "reward": 0.8},
    {"trial_id": "b", "config": {"learning_rate": 5e-3, "momentum": 0.85, "hidden_size": 16}, "reward": 0.6},
]
# One parameter of each kind a searcher is handed differently: a Tune domain, a quantile, a weighted choice.
SPEC_FOR = {"momentum": MOMENTUM, "hidden_size": WIDTH}
SPEC_OF = {
    "normal": ("momentum", MOMENTUM),
    "q_normal": ("hidden_size", {"distribution": "q_normal", "mu": 64, "sigma": 16, "q": 8}),
    "log_normal": ("learning_rate", {"distribution": "log_normal", "mu": -7.0, "sigma": 1.0}),
    "q_log_normal": ("hidden_size", {"distribution": "q_log_normal", "mu": 4.0, "sigma": 1.0, "q": 8}),
    "beta": ("dropout", {"distribution": "beta", "a": 2.0, "b": 5.0}),
    "q_beta": ("dropout", {"distribution": "q_beta", "a": 2.0, "b": 5.0, "q": 0.05}),
    "categorical_w_probabilities": ("hidden_size", WIDTH),
}


def _space() -> dict:
    sweep = {field: SweepDistribution(field, spec) for field, spec in SPEC_FOR.items()}
    return {"learning_rate": tune.loguniform(1e-4, 1e-2), **sweep, "epochs": 3}


@pytest.mark.parametrize("kind", OWN_SAMPLER)
def test_a_sweep_value_maps_back_to_a_quantile_that_gives_it_again(kind: str) -> None:
    field, spec = SPEC_OF[kind]
    domain = SweepDistribution(field, spec)
    for u in (0.03, 0.2, 0.5, 0.8, 0.97):
        value = domain.ppf(u)
        assert 0.0 <= domain.quantile(value) <= 1.0
        assert domain.ppf(domain.quantile(value)) == pytest.approx(value, rel=1e-9), (kind, u, value)
    # The middle of a weighted value's interval: 16 holds [0, 0.2), 32 [0.2, 0.7), 64 [0.7, 1).
    if kind == "categorical_w_probabilities":
        assert [domain.quantile(v) for v in (16, 32, 64)] == pytest.approx([0.1, 0.45, 0.85])


def test_optuna_starts_from_the_earlier_results_and_proposes_every_distribution() -> None:
    searcher = build("optuna", _space(), seed=0, concurrency=1, startup=2, evaluated=WARM).searcher
    assert searcher.set_search_properties("val_accuracy", "max", _space())
    momentum = SweepDistribution("momentum", MOMENTUM)
    # The two results are finished Optuna trials before the first suggestion, a sweep parameter as its quantile.
    done = searcher._ot_study.trials
    assert [t.state.name for t in done] == ["COMPLETE", "COMPLETE"] and [t.value for t in done] == [0.8, 0.6]
    assert done[0].params == pytest.approx({"learning_rate": 1e-3, "momentum": momentum.quantile(0.91),
                                            "hidden_size": 0.85})  # fmt: skip
    low, high, _ = BOUNDS["momentum"]
    for index in range(6):
        config = searcher.suggest(f"t{index}")
        assert set(config) == {"learning_rate", "momentum", "hidden_size"}
        assert 1e-4 <= config["learning_rate"] <= 1e-2 and config["hidden_size"] in (16, 32, 64)
        assert low <= config["momentum"] <= high
        searcher.on_trial_complete(f"t{index}", {"val_accuracy": 0.5 + index / 100, "training_iteration": 1})
    assert len(searcher._ot_study.trials) == 8
    assert searcher._ot_study.sampler._n_startup_trials == 2


def test_hyperopt_is_told_an_earlier_sweep_value_as_its_quantile() -> None:
    """TPE models ``momentum ~ normal`` as a uniform quantile: an earlier 0.91 is u = 0.58, not 0.91; both earlier
    results are finished HyperOpt trials (``get_state``: HyperOpt's own trials) before the first proposal."""
    searcher = build("hyperopt", _space(), seed=0, concurrency=1, startup=2, evaluated=WARM).searcher
    assert searcher.set_search_properties("val_accuracy", "max", _space())
    trials = searcher.get_state()["hyperopt_trials"]
    assert trials.statuses() == ["ok", "ok"] and sorted(trials.losses()) == [-0.8, -0.6]  # HyperOpt minimises
    momentum, width = (SweepDistribution(field, spec) for field, spec in SPEC_FOR.items())
    told = {-trial["result"]["loss"]: trial["misc"]["vals"] for trial in trials.trials}  # reward: values
    assert told[0.8]["momentum"] == pytest.approx([momentum.quantile(0.91)])
    assert told[0.8]["momentum"][0] == pytest.approx(0.579, abs=1e-3)
    assert told[0.8]["hidden_size"] + told[0.6]["hidden_size"] == pytest.approx([0.85, 0.1])  # 64 and 16
    config = searcher.suggest("next")
    assert config["hidden_size"] in (16, 32, 64) and 0.0 <= config["momentum"] <= 1.0
    assert len(searcher.get_state()["hyperopt_trials"].trials) == 3


SWEEP = """\
method: bayes
metric: {name: val_accuracy, goal: maximize}
parameters:
  learning_rate: {distribution: log_uniform_values, min: 0.0001, max: 0.01}
  momentum: {distribution: normal, mu: 0.9, sigma: 0.05}
  hidden_size: {distribution: categorical_w_probabilities, values: [16, 32, 64], probabilities: [0.2, 0.5, 0.3]}
  epochs: {value: 2}
"""


def _run(*args: str) -> str:
    proc = search_cli(*args)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_an_optuna_search_over_w_and_b_distributions_extends_warm_started(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(SWEEP)
    common = ("--space", str(space), "--searcher", "optuna", "--stand-in", "1", "--max-epochs", "2",
              "--grace-period", "1", "--initial-points", "2", "--no_wandb", "--storage-path", str(tmp_path),
              "--name", "opt")  # fmt: skip
    first = _run("--samples", "2", *common)
    second = _run("--samples", "4", *common)
    root = tmp_path / "opt"
    assert "2 trials ran, 0 errored" in first and "4 trials ran, 0 errored" in second

    record = json.loads((root / "search.json").read_text())
    assert [p["samples"] for p in record["parts"]] == [2, 2]
    rewards = {w["trial_id"]: w["reward"] for w in record["parts"][1]["warm_start"]}
    assert len(rewards) == 2
    # Part 2's Optuna study, as Tune saved it: the two earlier results as finished trials, then its own two.
    (state_file,) = (root / "part-2").glob("searcher-state-*.pkl")
    with open(state_file, "rb") as handle:
        study = cloudpickle.load(handle)["_ot_study"]  # OptunaSearch.save: its attributes
    trials = study.trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert sorted(t.value for t in trials[:2]) == pytest.approx(sorted(rewards.values()))
    # Every trial trained a config of the sweep's values: a weighted width, a momentum in its field's range.
    for trial in (*root.glob("trial_*"), *(root / "part-2").glob("trial_*")):
        config = json.loads((trial / "params.json").read_text())
        assert config["hidden_size"] in (16, 32, 64) and 0.0 <= config["momentum"] <= 1.0
        assert 1e-4 <= config["learning_rate"] <= 1e-2


def test_the_sweep_files_points_run_first_as_given_and_stay_unchanged() -> None:
    points = [{"learning_rate": 1e-3, "momentum": 0.9, "hidden_size": 32}]
    searcher = build("optuna", _space(), seed=0, concurrency=1, startup=2, points=points).searcher
    assert searcher.set_search_properties("val_accuracy", "max", _space())
    assert searcher.suggest("first") == pytest.approx(points[0])  # through its quantile and back
    assert points == [{"learning_rate": 1e-3, "momentum": 0.9, "hidden_size": 32}]  # the plan's own list
