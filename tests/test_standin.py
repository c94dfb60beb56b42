"""The stand-in trainable (tune_mlp.search.trainable): a whole search with sleeping trials, read by analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from conftest import FASHION_DIR, REPO
from wandb_runs import read_run

from tune_mlp.config import TrainConfig
from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.search.trainable import curve_point, final_accuracy
from tune_mlp.search.tuner import SearchOptions, run_search, write_best


def test_the_curve_rises_to_its_config_s_final_accuracy_and_a_good_lr_beats_a_bad_one() -> None:
    good, bad = TrainConfig(learning_rate=1e-3, dropout=0.2), TrainConfig(learning_rate=1e-1, dropout=0.2)
    assert final_accuracy(good) > final_accuracy(bad) + 0.1
    curve = [curve_point(good, epoch)["val_accuracy"] for epoch in range(1, 31)]
    assert curve[0] < 0.6 < curve[9] and abs(curve[-1] - final_accuracy(good)) < 0.01
    assert curve_point(good, 3) == curve_point(good, 3)  # seeded: a retried trial reports the same


@pytest.fixture(scope="module")
def standin_search(tmp_path_factory) -> Path:
    """20 stand-in trials, 4 at a time, TPE + ASHA + retention + W&B offline: the CLI's library path."""
    root = tmp_path_factory.mktemp("standin")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        options = SearchOptions(samples=20, max_epochs=9, grace_period=1, concurrency=4, stand_in=0.05,
                                storage_path=str(root), name="standin", wandb_project="tune_mlp_tests")  # fmt: skip
        results = run_search(options)
        assert len(results) == 20 and not results.errors
        write_best(results)
    finally:
        ray.shutdown()
    return root / "standin"


def test_a_standin_search_runs_every_trial_keeps_best_three_checkpoints_and_logs_one_wandb_run_each(
    standin_search: Path,
) -> None:
    trials = sorted(standin_search.glob("trial_*"))
    assert len(trials) == 20
    epochs = [len((trial / "result.json").read_text().splitlines()) for trial in trials]
    assert max(epochs) == 9 and min(epochs) == 1  # ASHA let some run to max_t and stopped others at its first rung
    for trial, reported in zip(trials, epochs):
        kept = sorted(trial.glob("checkpoint_*"))
        assert len(kept) == min(reported, 3) or len(kept) == min(reported, 4), (trial, reported, kept)
        assert load_checkpoint(kept[-1]).epoch == reported  # the latest is always kept
        assert len((trial / "progress.csv").read_text().splitlines()) == reported + 1  # a header, a row an epoch
        assert not list(trial.glob("events.out.tfevents.*"))  # TensorBoard's files only with --tensorboard
    for trial in trials:  # one W&B run per trial (one logging actor), holding the trial's numbers and config
        (offline,) = trial.glob("wandb/offline-run-*")
        run = read_run(offline)
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert (run.id, run.project, run.group) == (rows[0]["trial_id"], "tune_mlp_tests", "standin")
        assert trial.name == f"trial_{run.id}" and run.id in run.name
        logged = [(row["training_iteration"], row["epoch"], row["val_accuracy"]) for row in run.history]
        assert logged == [(row["training_iteration"], row["epoch"], row["val_accuracy"]) for row in rows]
        params = json.loads((trial / "params.json").read_text())
        assert {key: run.config[key] for key in params} == params and run.config["trial_id"] == run.id
    best = json.loads((standin_search / "best.json").read_text())
    assert best["trials"] == 20 and best["errored_trials"] == 0
    assert best["best"]["score"] > 0.85  # TPE found a good region of the made-up curve


def test_tensorboard_event_files_are_written_when_asked(tmp_path: Path) -> None:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        options = SearchOptions(samples=2, max_epochs=2, grace_period=2, concurrency=2, stand_in=0.05, tensorboard=True,
                                no_wandb=True, storage_path=str(tmp_path), name="tb")  # fmt: skip
        assert len(run_search(options)) == 2
    finally:
        ray.shutdown()
    trials = sorted((tmp_path / "tb").glob("trial_*"))
    assert len(trials) == 2
    for trial in trials:
        (events,) = trial.glob("events.out.tfevents.*")
        assert events.stat().st_size > 0 and len((trial / "result.json").read_text().splitlines()) == 2


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_analysis_reads_a_standin_search(standin_search: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    ran = subprocess.run(
        [sys.executable, "-m", "analysis", str(standin_search), "--out", str(out), "--data-dir", str(FASHION_DIR)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    best = json.loads((standin_search / "best.json").read_text())["best"]
    assert summary["trials"]["total"] == 20
    assert summary["best"]["score"] == pytest.approx(best["score"])
    assert summary["best"]["test_accuracy"] == pytest.approx(0.1, abs=0.01)  # zero weights: chance
    assert (out / "report.md").is_file()
