"""``python -m analysis`` as a user runs it, on real experiments made by real smoke searches (conftest)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from conftest import FASHION_DIR, MODEL_PNGS, SEARCH_PNGS, numpy_accuracy

from tune_mlp.data import load_dataset
from tune_mlp.mlp.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
PNGS = MODEL_PNGS + SEARCH_PNGS


def analysis_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def analyse(experiment: Path) -> tuple[Path, dict]:
    """The command with its default output folder, EXPERIMENT/analysis."""
    result = analysis_cli(str(experiment))
    assert result.returncode == 0, result.stderr[-3000:]
    out = experiment / "analysis"
    assert f"wrote {out / 'summary.json'}" in result.stdout
    return out, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def analysed(experiments: Path) -> tuple[Path, dict]:
    return analyse(experiments / "smoke")


@pytest.fixture(scope="module")
def analysed_by_loss(experiments: Path) -> tuple[Path, dict]:
    return analyse(experiments / "by-loss")


def all_reports(experiment_dir: Path) -> list[dict]:
    rows = []
    for result in experiment_dir.glob("trial_*/result.json"):
        rows += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return rows


def test_best_checkpoint_is_the_best_epoch_of_all_trials(experiments, analysed) -> None:
    _, summary = analysed
    reports = all_reports(experiments / "smoke")
    best = max(reports, key=lambda r: r["val_accuracy"])
    assert (summary["best"]["metric"], summary["best"]["mode"]) == ("val_accuracy", "max")
    assert summary["best"]["score"] == pytest.approx(best["val_accuracy"])
    assert summary["best"]["trial_id"] == best["trial_id"] and summary["best"]["epoch"] == best["epoch"]
    checkpoint = load_checkpoint(experiments / "smoke" / summary["best"]["checkpoint"])
    assert checkpoint.epoch == best["epoch"]
    assert summary["trials"]["total"] == 2
    assert set(summary["per_trial_training_seconds"]) == {r["trial_id"] for r in reports}


def test_an_experiment_selecting_by_val_loss_reports_its_minimum(experiments, analysed_by_loss) -> None:
    out, summary = analysed_by_loss
    reports = all_reports(experiments / "by-loss")
    lowest = min(reports, key=lambda r: r["val_loss"])
    assert max(r["val_loss"] for r in reports) > lowest["val_loss"]  # so max and min pick different epochs
    assert (summary["best"]["metric"], summary["best"]["mode"]) == ("val_loss", "min")
    assert summary["best"]["score"] == pytest.approx(lowest["val_loss"])
    assert (summary["best"]["trial_id"], summary["best"]["epoch"]) == (lowest["trial_id"], lowest["epoch"])
    assert load_checkpoint(experiments / "by-loss" / summary["best"]["checkpoint"]).epoch == lowest["epoch"]
    report = (out / "report.md").read_text()
    assert f"reached validation loss **{lowest['val_loss']:.4f}**" in report
    assert "selected by val_loss (min)" in report and "validation accuracy" not in report
    # The trial table lists the trials best (lowest) first.
    table = report.split("## The search", 1)[1]
    per_trial = {r["trial_id"]: min(x["val_loss"] for x in reports if x["trial_id"] == r["trial_id"]) for r in reports}
    ranked = sorted(per_trial, key=per_trial.get)
    assert table.index(f"| {ranked[0]} |") < table.index(f"| {ranked[1]} |")


def test_test_accuracy_matches_plain_numpy_on_the_checkpoint(experiments, analysed) -> None:
    _, summary = analysed
    checkpoint = load_checkpoint(experiments / "smoke" / summary["best"]["checkpoint"])
    (_, _), (x_test, y_test) = load_dataset("fashion_mnist")
    expected = numpy_accuracy(checkpoint.weights, checkpoint.config.activation, x_test, y_test)
    assert summary["best"]["test_accuracy"] == pytest.approx(expected, abs=1e-4)
    assert summary["best"]["test_accuracy"] > 0.3  # chance is 0.1


def test_every_plot_is_a_real_picture_and_the_report_embeds_them(analysed) -> None:
    out, _ = analysed
    for name in PNGS:
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 200, name
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20, f"{name} is nearly blank"
    html = (out / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == len(PNGS)
    markdown = (out / "report.md").read_text()
    assert all(f"]({name})" in markdown for name in PNGS)
    # Self-contained, and no bigger than its pictures in base64 (4/3 of their bytes) plus the text.
    pictures = sum((out / name).stat().st_size for name in PNGS)
    assert len(html.encode()) < pictures * 4 / 3 + 50_000


def test_the_reports_hold_no_path_of_this_machine(experiments, analysed, analysed_by_loss) -> None:
    for out, summary in (analysed, analysed_by_loss):
        for name in ("summary.json", "report.md", "report.html"):
            text = (out / name).read_text()
            assert str(experiments) not in text and str(REPO) not in text, f"{out / name} names a local path"
        assert summary["experiment_path"] == ".."
        assert summary["best"]["checkpoint"].startswith(f"trial_{summary['best']['trial_id']}/checkpoint_")
        assert f"`{summary['best']['checkpoint']}`" in (out / "report.md").read_text()


@pytest.mark.parametrize("make_dir", ["missing", "not_experiment"])
def test_a_folder_that_is_not_an_experiment(tmp_path, make_dir: str) -> None:
    target = tmp_path / "nope"
    if make_dir == "not_experiment":
        target.mkdir()
    result = analysis_cli(str(target))
    assert result.returncode == 2
    why = "does not exist" if make_dir == "missing" else "is not a tune_mlp model: give an experiment folder"
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert str(target) in line and why in line and "Traceback" not in result.stderr


def test_an_experiment_with_no_finished_trial(experiments, tmp_path) -> None:
    result = analysis_cli(str(experiments / "all-nan"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no trial of this experiment reported a finite val_accuracy" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_whose_config_does_not_match_its_weights(experiments, analysed, tmp_path) -> None:
    _, summary = analysed
    copy = tmp_path / "smoke"
    shutil.copytree(experiments / "smoke", copy)  # the shared experiment stays as it is
    config_file = copy / summary["best"]["checkpoint"] / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "hidden_size": config["hidden_size"] + 1}))
    result = analysis_cli(str(copy), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "W0 has shape" in result.stderr and "config.json" in result.stderr
