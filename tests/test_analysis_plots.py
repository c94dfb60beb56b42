"""Every figure and the report on synthetic data: real matplotlib, real files, checked to be non-trivial PNGs."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.report import Section, markdown_table, markdown_to_html, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def assert_real_png(path: Path, min_bytes: int = 5_000) -> None:
    path = Path(path)
    assert path.is_file(), path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > min_bytes, (path, len(data))
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 300, (path, image.shape)
    colours = np.unique((image[..., :3].reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 20, (path, len(colours))


def make_trials(n: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    trials = pd.DataFrame(
        {
            "trial_id": [f"trial_{i:02d}" for i in range(n)],
            "status": ["TERMINATED"] * (n - 1) + ["ERROR"],
            "stopped_early": [i % 3 == 1 for i in range(n)],
            "val_accuracy": 0.8 + 0.02 * np.arange(n),
            "epochs": [3 if i % 3 == 1 else 8 for i in range(n)],
            "training_seconds": rng.uniform(10, 60, n),
            "config/learning_rate": lr,
            "config/num_layers": rng.integers(1, 5, n),
            "config/optimizer": rng.choice(["sgd", "adam", "nadam"], n),
            "config/activation": ["relu", "tanh"] * (n // 2) + ["relu"] * (n % 2),
            "config/dropout": rng.uniform(0, 0.5, n),
            "config/weight_decay": [0.0, 1e-5, 1e-3, 0.0, 1e-4, 1e-2][:n] * (n // 6) + [0.0] * (n % 6),
            "config/batch_size": [32] * n,  # constant: must be dropped
            "config/lr_schedule": ["constant"] * n,  # constant: must be dropped
        }
    )
    trials.loc[n - 1, "val_accuracy"] = np.nan  # the errored/diverged trial
    return trials


def make_histories(trials: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    clock = 0.0
    for _, trial in trials.iterrows():
        final = trial["val_accuracy"] if np.isfinite(trial["val_accuracy"]) else 0.1
        for epoch in range(1, int(trial["epochs"]) + 1):
            clock += rng.uniform(2, 6)
            val = final - 0.25 * np.exp(-0.6 * epoch) + rng.normal(0, 0.003)
            rows.append(
                {
                    "trial_id": trial["trial_id"],
                    "epoch": epoch,
                    "val_accuracy": np.nan if not np.isfinite(trial["val_accuracy"]) and epoch > 1 else val,
                    "val_loss": 1.5 - val,
                    "train_loss": 1.4 - val,
                    "train_accuracy": val + 0.02,
                    "wall_time": clock,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def search() -> tuple[pd.DataFrame, pd.DataFrame]:
    trials = make_trials()
    return trials, make_histories(trials)


@pytest.fixture(scope="module")
def predictions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.8, y_true, rng.integers(0, 10, 500))
    # Class-shaped blobs so the image grid is not just noise.
    yy, xx = np.mgrid[0:28, 0:28]
    x = np.stack([np.exp(-((yy - 8 - label) ** 2 + (xx - 14) ** 2) / (20 + 8 * label)) for label in y_true])
    x = np.clip(x + rng.uniform(0, 0.15, x.shape), 0, 1).reshape(len(y_true), 784).astype(np.float32)
    return x, y_true, y_pred


def test_confusion_matrices(tmp_path: Path, predictions) -> None:
    _, y_true, y_pred = predictions
    counts, normalized = plots.confusion_matrices(y_true, y_pred, CLASS_NAMES, tmp_path)
    assert counts == tmp_path / "confusion_matrix.png"
    assert normalized == tmp_path / "confusion_matrix_normalized.png"
    assert_real_png(counts)
    assert_real_png(normalized)


def test_per_class_accuracy(tmp_path: Path, predictions) -> None:
    _, y_true, y_pred = predictions
    assert_real_png(plots.per_class_accuracy(y_true, y_pred, CLASS_NAMES, tmp_path / "per_class.png"))


def test_sample_predictions(tmp_path: Path, predictions) -> None:
    x, y_true, y_pred = predictions
    assert_real_png(plots.sample_predictions(x, y_true, y_pred, CLASS_NAMES, tmp_path / "samples.png"))
    # All correct and fewer images than asked for must work too.
    few = plots.sample_predictions(x[:5], y_true[:5], y_true[:5], CLASS_NAMES, tmp_path / "few.png")
    assert few.is_file()


def test_search_figures(tmp_path: Path, search) -> None:
    trials, histories = search
    assert_real_png(plots.learning_curves(histories, trials, tmp_path / "curves.png"))
    assert_real_png(plots.best_so_far(histories, tmp_path / "best.png"))
    assert_real_png(plots.parallel_coordinates(trials, tmp_path / "parallel.png"))


def test_varying_columns_drop_constants(search) -> None:
    trials, _ = search
    columns = plots.varying_config_columns(trials)
    assert "config/batch_size" not in columns and "config/lr_schedule" not in columns
    assert "config/learning_rate" in columns and "config/optimizer" in columns


def test_log_axis_for_learning_rate_and_zero_slot_for_weight_decay(search) -> None:
    trials, _ = search
    lr = plots._encode_axis("learning_rate", trials["config/learning_rate"])
    order = np.argsort(trials["config/learning_rate"].to_numpy())
    positions = lr.positions[order]
    assert positions[0] == pytest.approx(0) and positions[-1] == pytest.approx(1)
    expected = np.log10(np.sort(trials["config/learning_rate"].to_numpy()))
    assert np.allclose(positions, (expected - expected[0]) / (expected[-1] - expected[0]))
    wd = plots._encode_axis("weight_decay", trials["config/weight_decay"])
    assert (wd.positions[trials["config/weight_decay"].to_numpy() == 0] == 0).all()
    assert "0" in [label for _, label in wd.ticks]
    # Uniform values that happen to span a decade (dropout 0.01..0.5) stay linear.
    dropout = pd.Series(np.linspace(0.01, 0.5, 20))
    assert np.allclose(plots._encode_axis("dropout", dropout).positions, (dropout - 0.01) / 0.49)


def test_hyperparameter_importance_ranks_the_driver_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 40
    lr = 10 ** rng.uniform(-4, -1, n)
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(n)],
            "config/learning_rate": lr,
            "config/dropout": rng.uniform(0, 0.5, n),
            "config/optimizer": rng.choice(["sgd", "adam", "nadam"], n),
            "config/num_layers": rng.integers(1, 5, n),
            "config/batch_size": [64] * n,
        }
    )
    trials["val_accuracy"] = 0.9 - 0.05 * (np.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.002, n)
    trials.loc[0, "val_accuracy"] = np.nan
    path, importance = plots.hyperparameter_importance(trials, tmp_path / "importance.png")
    assert_real_png(path)
    assert importance.index[0] == "learning_rate"
    assert importance.iloc[0] > 0.5
    assert set(importance.index) == {"learning_rate", "dropout", "optimizer", "num_layers"}
    assert importance.sum() == pytest.approx(1.0)
    assert importance.is_monotonic_decreasing


def test_hyperparameter_importance_with_too_few_trials(tmp_path: Path, search) -> None:
    trials, _ = search
    few = trials.head(4).copy()
    few.loc[few.index[0], "val_accuracy"] = np.nan  # 3 usable trials
    path, importance = plots.hyperparameter_importance(few, tmp_path / "importance_few.png")
    assert path.is_file() and path.read_bytes().startswith(PNG_SIGNATURE)
    assert importance.empty


def test_loss_comparison(tmp_path: Path, search) -> None:
    _, histories = search
    by_loss = {
        "cross_entropy": histories[histories["trial_id"] == "trial_02"],
        "mse": histories[histories["trial_id"] == "trial_00"],
    }
    assert_real_png(plots.loss_comparison(by_loss, tmp_path / "loss.png"))


def test_degenerate_inputs_draw_a_message_instead_of_crashing(tmp_path: Path, search) -> None:
    trials, histories = search
    constant = trials[[c for c in trials.columns if not c.startswith("config/")]].assign(**{"config/seed": 0})
    assert plots.parallel_coordinates(constant, tmp_path / "p.png").is_file()
    assert plots.best_so_far(histories.assign(val_accuracy=np.nan), tmp_path / "b.png").is_file()
    assert plots.learning_curves(histories.iloc[0:0], trials, tmp_path / "c.png").is_file()
    assert plots.loss_comparison({}, tmp_path / "l.png").is_file()


def test_report(tmp_path: Path, search) -> None:
    trials, histories = search
    images = [
        plots.learning_curves(histories, trials, tmp_path / "learning_curves.png"),
        plots.best_so_far(histories, tmp_path / "best_so_far.png"),
    ]
    table = pd.DataFrame({"trial": ["trial_04", "trial_03"], "val_accuracy": [0.8812, 0.8634], "epochs": [8, 8]})
    sections = [
        Section("Summary", "The **best** trial used `adam`.\n\n- lr <0.01 & rising\n- second point", table),
        Section("Search", "Curves below.", None, images),
        Section("Empty", ""),
    ]
    md_path, html_path = write_report(tmp_path / "report", "Fashion-MNIST <search>", sections)
    assert md_path == tmp_path / "report" / "report.md"
    page = html_path.read_text()
    assert page.count('<img src="data:image/png;base64,') == len(images)
    for value in ("trial_04", "0.8812", "0.8634"):
        assert value in page
    assert "<strong>best</strong>" in page and "<code>adam</code>" in page
    assert "<li>lr &lt;0.01 &amp; rising</li>" in page
    assert "Fashion-MNIST &lt;search&gt;" in page
    markdown = md_path.read_text()
    for image in images:
        assert f"![{image.stem}](../{image.name})" in markdown
    assert "| trial_04 | 0.8812 | 8 |" in markdown
    # The embedded images are the real files.
    uri = re.search(r'data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(uri) == images[0].read_bytes()


def test_report_images_inside_out_dir_are_referenced_by_file_name(tmp_path: Path, search) -> None:
    trials, histories = search
    image = plots.best_so_far(histories, tmp_path / "best_so_far.png")
    md_path, _ = write_report(tmp_path, "t", [Section("s", "x", images=[image])])
    assert "![best_so_far](best_so_far.png)" in md_path.read_text()


def test_markdown_helpers() -> None:
    table = pd.DataFrame({"a|b": [1.0, np.nan]}, index=pd.Index(["x", "y"], name="row"))
    lines = markdown_table(table).splitlines()
    assert lines[0] == "| row | a\\|b |" and lines[1] == "|---|---:|" and lines[3] == "| y |  |"
    assert markdown_to_html("one\ntwo\n\nthree") == "<p>one two</p>\n<p>three</p>"
    assert markdown_to_html("`**x**`") == "<p><code>**x**</code></p>"
