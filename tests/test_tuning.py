"""tune_mlp.search.tuner and `python -m tune_mlp.search`: a real local Ray, real HyperOpt, ASHA and wandb (offline)."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from conftest import FASHION_DIR, REPO, search_cli, write_space

from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.search.results import best_result, load_results
from tune_mlp.search.trainable import CRASH_ONCE_ENV
from tune_mlp.search.tuner import SearchOptions, run_search

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def reported_epochs(trial_dir: Path) -> list[int]:
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines if line.strip()]


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
parameters:
  num_layers: {value: 2}
  hidden_size: {value: 16}
  batch_size: {value: 256}
  optimizer: {value: sgd}
  learning_rate: {values: [1000000.0, 0.05]}
""",
    )
    results = run_search(
        SearchOptions(
            samples=4,
            space=space,
            max_epochs=3,
            grace_period=3,
            initial_points=4,
            storage_path=str(tmp_path),
            name="nan",
            no_wandb=True,
            seed=3,
        )
    )
    assert len(results) == 4 and not results.errors
    diverged = [r for r in results if r.metrics.get("diverged")]
    healthy = [r for r in results if not r.metrics.get("diverged")]
    assert diverged and healthy, [r.config for r in results]
    assert all(math.isnan(r.metrics["val_accuracy"]) for r in diverged)
    assert all(r.metrics["epoch"] == 3 for r in healthy)
    assert best_result(results).config["learning_rate"] == 0.05


@pytest.mark.ray
def test_crashed_trial_is_retried_from_its_checkpoint(tmp_path) -> None:
    marker = tmp_path / "crashed"
    space = write_space(tmp_path / "space.yaml")
    proc = search_cli(
        "--samples",
        "1",
        "--space",
        space,
        "--max-epochs",
        "3",
        "--storage-path",
        str(tmp_path),
        "--name",
        "crash",
        env={CRASH_ONCE_ENV: str(marker)},
        clean_wandb_home=tmp_path / "home",
    )
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    assert marker.exists(), "the injected crash did not happen"
    # The CLI chose W&B's offline mode by itself (no key) and the trial's logging actor honoured it.
    assert "logging offline" in out
    assert list((tmp_path / "crash").glob("trial_*/wandb/offline-run-*")), "no offline W&B run was written"
    (trial_dir,) = [p for p in (tmp_path / "crash").iterdir() if p.name.startswith("trial_")]
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    after_crash = [row["epoch"] for row in rows if row["resumed_from"] == 1]
    assert after_crash == [2, 3], rows  # resumed after epoch 1 from its checkpoint, not restarted from scratch
    assert all(row["resumed_from"] == 0 for row in rows if row["epoch"] == 1)
    results = load_results(tmp_path / "crash")
    assert [r.metrics["epoch"] for r in results] == [3] and not results.errors


def test_driver_killed_mid_search_resumes_without_losing_or_rerunning_trials(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    args = [
        "--stand-in",  # the driver's machinery is what is tested: trials sleep a second an epoch (no TensorFlow)
        "1",
        "--samples",
        "6",
        "--space",
        space,
        "--max-epochs",
        "4",
        "--grace-period",
        "4",
        "--no_wandb",
        "--storage-path",
        str(tmp_path),
        "--name",
        "killed",
        "--concurrency",
        "2",
    ]
    proc = search_cli(*args, start_new_session=True)
    experiment = tmp_path / "killed"
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [p for p in experiment.glob("trial_*/result.json") if len(p.read_text().splitlines()) >= 2]
        if list(experiment.glob("experiment_state-*.json")) and done:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the search never reported")
    # A second driver for the same experiment is refused while the first runs, before it starts Ray. The
    # first is paused meanwhile (SIGSTOP): alive and holding its lock, it cannot finish under a slow start.
    lock = experiment / ".driver.lock"
    os.killpg(proc.pid, signal.SIGSTOP)
    assert proc.poll() is None, "the search ended before it could be stopped: give its trials more epochs"
    second = subprocess.run(
        [sys.executable, "-m", "tune_mlp.search", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    assert second.stderr.strip().splitlines() == [
        f"error: {experiment} is being run by another driver (pid {proc.pid} on {socket.gethostname()}, "
        f"started {json.loads(lock.read_text())['started']}; lock {lock}): wait for it, stop it, or use another --name"
    ]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    assert json.loads(lock.read_text())["pid"] == proc.pid  # a killed driver leaves its lock behind

    rerun = search_cli(*args, "--resume")
    out, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out[-3000:]
    assert f"note: took over the stale lock {lock} (pid {proc.pid} is not running on this host)" in out
    assert "resuming experiment" in out
    assert not lock.exists()  # released at the end
    results = load_results(experiment)
    assert len(results) == 6 and not results.errors
    assert all(r.metrics["epoch"] == 4 for r in results)
    # (A trial the killed driver had created but not yet saved may leave an empty folder behind: the
    # experiment's state, not the folders, says which trials exist.)
    for result in results:
        epochs = reported_epochs(Path(result.path))
        assert epochs == sorted(set(epochs)), f"{result.path} re-ran epochs: {epochs}"


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
