"""``python -m analysis`` on a real small experiment made by a real smoke search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import ray
from conftest import FASHION_DIR, numpy_accuracy
from idx_files import write_fake_dataset

from analysis.__main__ import main as analysis_main
from tune_mlp.checkpoint import load_checkpoint
from tune_mlp.data import load_dataset
from tune_mlp.study.compare_losses import main as compare_main
from tune_mlp.study.mnist_configs import main as mnist_main
from tune_mlp.tuning import SearchOptions, run_search

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
PNGS = [
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "per_class_accuracy.png",
    "sample_predictions.png",
    "learning_curves.png",
    "best_so_far.png",
    "parallel_coordinates.png",
    "importance.png",
]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("experiments")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_search(SearchOptions(smoke_test=True, samples=2, storage_path=str(root), name="smoke", no_wandb=True))
        space = root / "nan.yaml"
        space.write_text(
            "parameters:\n  num_layers: {value: 2}\n  hidden_size: {value: 16}\n"
            "  batch_size: {value: 256}\n  optimizer: {value: sgd}\n  learning_rate: {value: 1000000.0}\n"
        )
        run_search(
            SearchOptions(
                samples=1,
                space=str(space),
                max_epochs=2,
                storage_path=str(root),
                name="all-nan",
                no_wandb=True,
                data_dir=str(FASHION_DIR),
            )
        )
    finally:
        ray.shutdown()
    return root


@pytest.fixture(scope="module")
def analysed(experiment: Path) -> tuple[Path, dict]:
    out = experiment / "report"
    assert analysis_main([str(experiment / "smoke"), "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def all_reports(experiment_dir: Path) -> list[dict]:
    rows = []
    for result in experiment_dir.glob("trial_*/result.json"):
        rows += [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    return rows


def test_best_checkpoint_is_the_best_epoch_of_all_trials(experiment, analysed) -> None:
    _, summary = analysed
    reports = all_reports(experiment / "smoke")
    best = max(reports, key=lambda r: r["val_accuracy"])
    assert summary["best"]["score"] == pytest.approx(best["val_accuracy"])
    assert summary["best"]["trial_id"] == best["trial_id"] and summary["best"]["epoch"] == best["epoch"]
    checkpoint = load_checkpoint(summary["best"]["checkpoint"])
    assert checkpoint.epoch == best["epoch"]
    assert summary["trials"]["total"] == 2
    assert set(summary["per_trial_training_seconds"]) == {r["trial_id"] for r in reports}


def test_test_accuracy_matches_plain_numpy_on_the_checkpoint(analysed) -> None:
    _, summary = analysed
    checkpoint = load_checkpoint(summary["best"]["checkpoint"])
    (_, _), (x_test, y_test) = load_dataset("fashion_mnist")
    expected = numpy_accuracy(checkpoint.weights, checkpoint.config.activation, x_test, y_test)
    assert summary["best"]["test_accuracy"] == pytest.approx(expected, abs=1e-4)
    assert summary["best"]["test_accuracy"] > 0.3


def test_every_plot_is_a_real_picture_and_the_report_embeds_them(analysed) -> None:
    out, _ = analysed
    for name in PNGS:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, name
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 200 and image.shape[1] > 200, name
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20, f"{name} is nearly blank"
    html = (out / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == len(PNGS)
    markdown = (out / "report.md").read_text()
    assert all(name in markdown for name in PNGS)


@pytest.mark.parametrize("make_dir", ["missing", "not_experiment"])
def test_a_folder_that_is_not_an_experiment(tmp_path, capsys, make_dir: str) -> None:
    target = tmp_path / "nope"
    if make_dir == "not_experiment":
        target.mkdir()
    assert analysis_main([str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and ("does not exist" in err or "not a Ray Tune experiment" in err)


def test_an_experiment_with_no_finished_trial(experiment, capsys, tmp_path) -> None:
    assert analysis_main([str(experiment / "all-nan"), "--out", str(tmp_path)]) == 2
    assert "no trial of this experiment reported a finite val_accuracy" in capsys.readouterr().err


def test_a_checkpoint_whose_config_does_not_match_its_weights(experiment, analysed, capsys, tmp_path) -> None:
    _, summary = analysed
    config_file = Path(summary["best"]["checkpoint"]) / "config.json"
    original = config_file.read_text()
    try:
        config = json.loads(original)
        config_file.write_text(json.dumps({**config, "hidden_size": config["hidden_size"] + 1}))
        assert analysis_main([str(experiment / "smoke"), "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "W0 has shape" in err and "config.json" in err
    finally:
        config_file.write_text(original)


def test_compare_losses_trains_both_and_reports(tmp_path) -> None:
    data_dir = write_fake_dataset(tmp_path / "data", n_train=300, n_test=60)
    out = tmp_path / "out"
    assert (
        compare_main(
            ["--data-dir", str(data_dir), "--epochs", "2", "--hidden_size", "8", "--no-progress", "--out", str(out)]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"cross_entropy", "mse"}
    assert "Why cross-entropy is the better default" in (out / "report.md").read_text()
    assert (out / "loss_comparison.png").stat().st_size > 5_000


def test_mnist_configs_on_generated_idx_files(tmp_path) -> None:
    data_dir = write_fake_dataset(tmp_path / "mnist", n_train=300, n_test=60)
    out = tmp_path / "out"
    assert mnist_main(["--data-dir", str(data_dir), "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results) == 3 and all(r["config"]["dataset"] == "mnist" for r in results.values())
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in results.values())


def test_mnist_missing_is_the_loaders_clear_message(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("TUNE_MLP_DATA_DIR", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mnist_main(["--data-dir", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "mnist" in err and str(empty) in err
    shutil.rmtree(tmp_path / "o", ignore_errors=True)
