"""Every figure of analysis/plots_eval, plots_search and parallel on synthetic data: real matplotlib, real
files, checked for content (size, colours, the best marked by the experiment's own metric and mode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_search import CLASS_NAMES, assert_real_png, count_colour, make_histories, make_trials, png_pixels

from analysis import plots_eval, plots_search
from analysis.columns import varying_config_columns
from analysis.figures import BEST_COLOR, CORRECT_COLOR, WRONG_COLOR, message_figure
from analysis.objective import Objective
from analysis.parallel import encode_axis, parallel_coordinates

LOSS = Objective("val_loss", "min")
VIRIDIS_BRIGHT = "#fde725"  # the best end of parallel coordinates' colour scale


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
    counts, normalized = plots_eval.confusion_matrices(y_true, y_pred, CLASS_NAMES, tmp_path)
    assert counts == tmp_path / "confusion_matrix.png"
    assert normalized == tmp_path / "confusion_matrix_normalized.png"
    assert_real_png(counts)
    assert_real_png(normalized)
    assert not np.array_equal(png_pixels(counts), png_pixels(normalized))  # two scales, not one picture twice


def test_per_class_accuracy(tmp_path: Path, predictions) -> None:
    _, y_true, y_pred = predictions
    assert_real_png(plots_eval.per_class_accuracy(y_true, y_pred, CLASS_NAMES, tmp_path / "per_class.png"))


def test_sample_predictions_frame_mistakes_in_red_and_hits_in_green(tmp_path: Path, predictions) -> None:
    x, y_true, y_pred = predictions
    mixed = plots_eval.sample_predictions(x, y_true, y_pred, CLASS_NAMES, tmp_path / "samples.png")
    assert_real_png(mixed)
    assert count_colour(mixed, WRONG_COLOR) > 500 and count_colour(mixed, CORRECT_COLOR) > 500
    # All correct and fewer images than asked for: five green frames, no red anywhere.
    few = plots_eval.sample_predictions(x[:5], y_true[:5], y_true[:5], CLASS_NAMES, tmp_path / "few.png")
    assert_real_png(few, min_bytes=2_000, min_width=200)
    assert count_colour(few, WRONG_COLOR) == 0 and count_colour(few, CORRECT_COLOR) > 200


def colour_columns(path: Path, hex_colour: str, tolerance: int = 20) -> float:
    """The share of the picture's pixel columns holding this colour: a line across the axes spans most of them."""
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    near = np.abs(png_pixels(path).astype(int) - target).max(axis=-1) <= tolerance
    return float(near.any(axis=0).mean())


def test_search_figures(tmp_path: Path, search) -> None:
    trials, histories = search
    for path in (
        plots_search.learning_curves(histories, trials, tmp_path / "curves.png"),
        plots_search.best_so_far(histories, tmp_path / "best.png"),
    ):
        assert_real_png(path)
        assert count_colour(path, BEST_COLOR) > 100, path  # the best is marked
    # Parallel coordinates mark the best by colour: its line, the bright end of viridis, crosses every axis
    # (the colour bar's bright end alone is a narrow strip at the right).
    parallel = parallel_coordinates(trials, tmp_path / "parallel.png")
    assert_real_png(parallel)
    assert colour_columns(parallel, VIRIDIS_BRIGHT) > 0.5  # 0.77 here
    unscored = parallel_coordinates(trials.assign(val_accuracy=np.nan), tmp_path / "unscored.png")
    assert colour_columns(unscored, VIRIDIS_BRIGHT) < 0.1  # no best: the colour bar's strip only (0.02 here)


def test_the_best_trial_follows_the_metrics_direction(search) -> None:
    trials, histories = search
    assert plots_search.best_trial_id(trials, histories) == "trial_04"  # val_accuracy, max
    flipped = trials.assign(val_loss=trials["val_accuracy"])  # the same numbers read as a loss
    assert plots_search.best_trial_id(flipped, histories, LOSS) == "trial_00"  # the lowest one
    # No finite score in the trials table: the histories decide, by the same direction.
    no_scores = trials.assign(val_loss=np.nan)
    by_history = LOSS.best_per_group(histories, "trial_id").idxmin()
    assert plots_search.best_trial_id(no_scores, histories, LOSS) == by_history


def test_loss_figures_are_drawn_for_a_minimised_metric(tmp_path: Path, search) -> None:
    trials, histories = search
    by_accuracy = plots_search.best_so_far(histories, tmp_path / "acc.png")
    by_loss = plots_search.best_so_far(histories, tmp_path / "loss.png", LOSS)
    for path in (by_accuracy, by_loss, plots_search.learning_curves(histories, trials, tmp_path / "c.png", LOSS)):
        assert_real_png(path)
    assert not np.array_equal(png_pixels(by_accuracy), png_pixels(by_loss))
    viridis_bright, viridis_dark = VIRIDIS_BRIGHT, "#440154"  # the best line is bright whichever way it points
    by_max = parallel_coordinates(trials, tmp_path / "p_max.png")
    by_min = parallel_coordinates(trials.assign(val_loss=trials["val_accuracy"]), tmp_path / "p_min.png", LOSS)
    assert count_colour(by_max, viridis_bright, 20) > 0 and count_colour(by_min, viridis_bright, 20) > 0
    assert count_colour(by_max, viridis_dark, 20) > 0 and count_colour(by_min, viridis_dark, 20) > 0


def test_varying_columns_drop_constants(search) -> None:
    trials, _ = search
    columns = varying_config_columns(trials)
    assert "config/batch_size" not in columns and "config/lr_schedule" not in columns
    assert "config/learning_rate" in columns and "config/optimizer" in columns


def test_log_axis_for_learning_rate_and_zero_slot_for_weight_decay(search) -> None:
    trials, _ = search
    lr = encode_axis("learning_rate", trials["config/learning_rate"])
    order = np.argsort(trials["config/learning_rate"].to_numpy())
    positions = lr.positions[order]
    assert positions[0] == pytest.approx(0) and positions[-1] == pytest.approx(1)
    expected = np.log10(np.sort(trials["config/learning_rate"].to_numpy()))
    assert np.allclose(positions, (expected - expected[0]) / (expected[-1] - expected[0]))
    wd = encode_axis("weight_decay", trials["config/weight_decay"])
    assert (wd.positions[trials["config/weight_decay"].to_numpy() == 0] == 0).all()
    assert "0" in [label for _, label in wd.ticks]
    # Uniform values that happen to span a decade (dropout 0.01..0.5) stay linear.
    dropout = pd.Series(np.linspace(0.01, 0.5, 20))
    assert np.allclose(encode_axis("dropout", dropout).positions, (dropout - 0.01) / 0.49)


def test_categorical_and_missing_values_on_an_axis() -> None:
    axis = encode_axis("optimizer", pd.Series(["sgd", "adam", None, "adam"]))
    assert list(axis.positions) == [1.0, 0.0, -0.1, 0.0]
    assert axis.ticks == [(0.0, "adam"), (1.0, "sgd"), (-0.1, "n/a")]


def test_loss_comparison(tmp_path: Path, search) -> None:
    _, histories = search
    by_loss = {
        "cross_entropy": histories[histories["trial_id"] == "trial_02"],
        "mse": histories[histories["trial_id"] == "trial_00"],
    }
    assert_real_png(plots_eval.loss_comparison(by_loss, tmp_path / "loss.png"))


def test_degenerate_inputs_draw_the_reason_instead_of_crashing(tmp_path: Path, search) -> None:
    trials, histories = search
    constant = trials[[c for c in trials.columns if not c.startswith("config/")]].assign(**{"config/seed": 0})
    cases = [
        (parallel_coordinates(constant, tmp_path / "p.png"),
         ("Parallel coordinates", "no hyperparameter varies across the trials")),
        (plots_search.best_so_far(histories.assign(val_accuracy=np.nan), tmp_path / "b.png"),
         ("Best validation accuracy so far", "no finite validation accuracy reported")),
        (plots_search.learning_curves(histories.iloc[0:0], trials, tmp_path / "c.png"),
         ("Learning curves", "no epochs reported")),
        (plots_eval.loss_comparison({}, tmp_path / "l.png"), ("Loss comparison", "no runs to compare")),
    ]  # fmt: skip
    for index, (drawn, (title, reason)) in enumerate(cases):
        expected = message_figure(tmp_path / f"expected_{index}.png", title, reason)
        assert np.array_equal(png_pixels(drawn), png_pixels(expected)), drawn
