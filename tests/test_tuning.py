"""tune_mlp.search.tuner and `python -m tune_mlp.search`: a real local Ray, real HyperOpt, ASHA and wandb (offline)."""

from __future__ import annotations

import json
import math

import pytest
import ray
from conftest import FASHION_DIR, search_cli, write_space

from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.search.results import best_result
from tune_mlp.search.tuner import SearchOptions, run_search

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_smoke_search_with_wandb_offline_gives_a_loadable_best_checkpoint(smoke_search) -> None:
    results, summary = smoke_search.results, smoke_search.best  # conftest: run_search, then write_best
    assert len(results) == 2 and not results.errors
    assert json.loads((smoke_search.path / "best.json").read_text())["best"] == summary.to_dict()
    best = load_checkpoint(summary.checkpoint)
    assert best.metrics["val_accuracy"] == pytest.approx(summary.score)
    assert summary.score > 0.3  # chance is 0.1
    every_epoch = [m["val_accuracy"] for r in results for m in r.metrics_dataframe.to_dict("records")]
    assert summary.score == pytest.approx(max(every_epoch))
    assert list(smoke_search.path.rglob("offline-run-*")), "WandbLoggerCallback wrote no offline run"


def test_nan_trial_is_stopped_and_the_search_goes_on(local_ray, tmp_path) -> None:
    space = write_space(
        tmp_path / "nan.yaml",
        """
method: grid
parameters:
  num_layers: {value: 2}
  hidden_size: {value: 16}
  batch_size: {value: 256}
  optimizer: {value: sgd}
  learning_rate: {values: [1000000.0, 0.05]}
""",
    )  # a grid: one diverging trial and one healthy, side by side
    results = run_search(
        SearchOptions(
            samples=1,
            space=space,
            max_epochs=3,
            grace_period=3,
            storage_path=str(tmp_path),
            name="nan",
            no_wandb=True,
            seed=3,
        )
    )
    assert len(results) == 2 and not results.errors
    diverged = [r for r in results if r.metrics.get("diverged")]
    healthy = [r for r in results if not r.metrics.get("diverged")]
    assert diverged and healthy, [r.config for r in results]
    assert all(math.isnan(r.metrics["val_accuracy"]) for r in diverged)
    assert all(r.metrics["epoch"] == 3 for r in healthy)
    assert best_result(results).config["learning_rate"] == 0.05


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parameters:\n  learning_rat: {values: [0.1]}\n", "parameters.learning_rat: unknown hyperparameter"),
        ("parameters:\n  optimizer: {values: [adam, adamw]}\n", "parameters.optimizer: invalid choice 'adamw'"),
        ("parameters:\n  learning_rate: {min: 0.1, max: 0.01}\n", "'min' (0.1) must be smaller than 'max' (0.01)"),
        ("parameters:\n  dropout: {distribution: beta, min: 0, max: 1}\n", "beta takes a, b, not 'min'"),
        ("parameters: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_space_file_gets_a_clear_error_before_ray_starts(tmp_path, text: str, message: str) -> None:
    space = write_space(tmp_path / "bad.yaml", text)
    proc = search_cli("--space", space, "--no_wandb", "--storage-path", str(tmp_path))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert message in out and space in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("flag", "value"), [("--samples", "0"), ("--mode", "up"), ("--metric", "test_accuracy")])
def test_bad_cli_values_are_named(tmp_path, flag: str, value: str) -> None:
    proc = search_cli(flag, value, "--no_wandb", "--storage-path", str(tmp_path / "results"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and f"argument {flag}" in out and value in out
    assert not (tmp_path / "results").exists()
