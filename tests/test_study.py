"""The study's commands (tune_mlp.study): they train through run_training and report through analysis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from idx_files import write_fake_dataset
from synthetic_search import assert_real_png

from tune_mlp.config import TrainConfig
from tune_mlp.study.compare_losses import main as compare_main
from tune_mlp.study.mnist_configs import RECOMMENDED, recommended_configs
from tune_mlp.study.mnist_configs import main as mnist_main

REPO = Path(__file__).resolve().parent.parent


def metrics_best(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["best"]


@pytest.mark.slow  # trains whole runs more than once: make test, not make test-fast
def test_compare_losses_trains_both_and_reports(tmp_path, capsys) -> None:
    data_dir = write_fake_dataset(tmp_path / "data", n_train=300, n_test=60)
    out = tmp_path / "out"
    args = ["--data-dir", str(data_dir), "--epochs", "2", "--hidden_size", "8", "--no-progress", "--out", str(out)]
    assert compare_main(args) == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["hidden_size"] == 8 and saved["config"]["epochs"] == 2
    results = saved["results"]
    assert set(results) == {"cross_entropy", "mse"}
    printed = capsys.readouterr().out
    for loss, result in results.items():
        best = metrics_best(out / loss)  # each run's own metrics.json is what the table reports
        assert json.loads((out / loss / "checkpoint" / "config.json").read_text())["loss"] == loss
        assert result == {"best_val_accuracy": best["score"], "test_accuracy": best["test_accuracy"],
                          "test_loss": best["test_loss"], "best_epoch": best["epoch"]}  # fmt: skip
        assert f"{loss:>13}: test_accuracy {best['test_accuracy']:.4f}" in printed
    report = (out / "report.md").read_text()
    assert "Why cross-entropy is the better default" in report
    assert f"**{results['cross_entropy']['test_accuracy']:.4f}**" in report and "![loss_comparison]" in report
    assert_real_png(out / "loss_comparison.png")
    assert f"wrote {out / 'report.md'}" in printed


def test_compare_losses_has_no_loss_flag(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tune_mlp.study.compare_losses", "--loss", "mse", "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "unrecognized arguments: --loss mse" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # trains whole runs more than once: make test, not make test-fast
def test_mnist_configs_on_generated_idx_files(tmp_path) -> None:
    data_dir = write_fake_dataset(tmp_path / "mnist", n_train=300, n_test=60)
    out = tmp_path / "out"
    assert mnist_main(["--data-dir", str(data_dir), "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [entry["name"] for entry in yaml.safe_load(RECOMMENDED.read_text())]
    assert list(results) == names
    for index, result in enumerate(results.values()):
        run = out / f"config_{index + 1}"
        best = metrics_best(run)
        assert result["test_accuracy"] == best["test_accuracy"] and result["best_val_accuracy"] == best["score"]
        trained = TrainConfig.load(run / "checkpoint" / "config.json")
        assert trained.dataset == "mnist" and trained.epochs == 1
        assert trained.to_dict() == result["config"]
    assert all(f"| {name} |" in (out / "report.md").read_text() for name in names)


def test_mnist_configs_from_an_experiment_read_the_checkpoints_config(experiments) -> None:
    configs = recommended_configs(str(experiments / "by-loss"), count=2)
    reports = []
    for result in (experiments / "by-loss").glob("trial_*/result.json"):
        reports += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    lowest = {}
    for row in reports:
        lowest[row["trial_id"]] = min(lowest.get(row["trial_id"], float("inf")), row["val_loss"])
    assert list(configs) == [f"trial {t}" for t in sorted(lowest, key=lowest.get)]  # best (lowest) first
    for name, config in configs.items():
        trial_dir = next((experiments / "by-loss").glob(f"trial_{name.split()[-1]}"))
        on_disk = TrainConfig.load(next(trial_dir.glob("checkpoint_*/config.json")))
        epochs = max(row["epoch"] for row in reports if row["trial_id"] == name.split()[-1])
        assert config.to_dict() == {**on_disk.to_dict(), "epochs": epochs}


def test_mnist_missing_is_the_loaders_clear_message(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in __import__("os").environ.items() if k != "TUNE_MLP_DATA_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "tune_mlp.study.mnist_configs", "--data-dir", str(empty), "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "mnist" in line and str(empty) in line and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
