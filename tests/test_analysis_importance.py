"""analysis/importance.py: a random forest's permutation importance over trials, computed apart from drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_search import assert_real_png, make_trials, png_pixels

from analysis.figures import message_figure
from analysis.importance import hyperparameter_importance, importance_problem
from analysis.objective import Objective
from analysis.plots_search import importance_chart


def driven_by_learning_rate(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
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
    trials["val_loss"] = 0.3 + 0.2 * np.abs(np.log10(lr) + 2.5) + rng.normal(0, 0.002, n)
    return trials


@pytest.mark.parametrize("metric", ["val_accuracy", "val_loss"])
def test_importance_ranks_the_driver_first(metric: str) -> None:
    importance = hyperparameter_importance(driven_by_learning_rate(), metric)
    assert importance.index[0] == "learning_rate"
    assert importance.iloc[0] > 0.5
    assert set(importance.index) == {"learning_rate", "dropout", "optimizer", "num_layers"}  # constants dropped
    assert importance.sum() == pytest.approx(1.0)
    assert importance.is_monotonic_decreasing


def test_the_chart_draws_the_computed_shares(tmp_path: Path) -> None:
    trials = driven_by_learning_rate()
    importance = hyperparameter_importance(trials)
    path = importance_chart(importance, trials, tmp_path / "importance.png")
    assert_real_png(path)
    halved = importance_chart(importance.iloc[:2], trials, tmp_path / "two.png")
    assert png_pixels(halved).shape[0] < png_pixels(path).shape[0]  # one bar per hyperparameter


def test_too_few_trials_give_an_empty_series_and_say_why(tmp_path: Path) -> None:
    few = make_trials().head(4).copy()
    few.loc[few.index[0], "val_accuracy"] = np.nan  # 3 usable trials
    assert hyperparameter_importance(few).empty
    reason = "not enough trials with a result (3, need at least 4)"
    assert importance_problem(few) == reason
    assert importance_problem(few, "val_loss") is None  # its val_loss column has 4 finite values
    drawn = importance_chart(hyperparameter_importance(few), few, tmp_path / "few.png", Objective())
    expected = message_figure(tmp_path / "expected.png", "Hyperparameter importance", reason)
    assert np.array_equal(png_pixels(drawn), png_pixels(expected))


def test_nothing_varies() -> None:
    trials = make_trials()[["trial_id", "val_accuracy", "config/batch_size"]]
    assert importance_problem(trials) == "no hyperparameter varies across the trials"
    assert hyperparameter_importance(trials).empty
