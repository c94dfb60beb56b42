"""analysis/objective.py: "best" in the experiment's own direction, as pure pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.objective import DEFAULT_OBJECTIVE, Objective
from tune_mlp.records import SearchRecord

SCORES = pd.Series([0.5, np.nan, 0.2, 0.9, 0.2], index=["a", "b", "c", "d", "e"])
LOSS = Objective("val_loss", "min")


def test_the_default_is_the_searchs_default() -> None:
    assert DEFAULT_OBJECTIVE == Objective.of(SearchRecord()) == Objective("val_accuracy", "max")
    assert Objective.of(SearchRecord(metric="val_loss", mode="min")) == LOSS


def test_best_index_by_direction_skipping_nan() -> None:
    assert DEFAULT_OBJECTIVE.best_index(SCORES) == "d"
    assert LOSS.best_index(SCORES) == "c"  # the first of two equal minima
    assert LOSS.best_index(pd.Series([np.nan, np.nan])) is None


def test_cumulative_best() -> None:
    assert DEFAULT_OBJECTIVE.cumulative_best(SCORES).tolist() == [0.5, 0.5, 0.5, 0.9, 0.9]
    assert LOSS.cumulative_best(SCORES).tolist() == [0.5, 0.5, 0.2, 0.2, 0.2]


def test_sorting_and_drawing_order() -> None:
    frame = pd.DataFrame({"trial_id": list(SCORES.index), "val_loss": SCORES.to_numpy()})
    assert LOSS.sort_best_first(frame)["trial_id"].tolist() == ["c", "e", "a", "d", "b"]
    accuracy = frame.rename(columns={"val_loss": "val_accuracy"})
    assert DEFAULT_OBJECTIVE.sort_best_first(accuracy)["trial_id"].tolist() == ["d", "a", "c", "e", "b"]
    assert LOSS.order_best_last(SCORES) == [1, 3, 0, 2, 4]  # NaN first, then worst to best
    assert DEFAULT_OBJECTIVE.order_best_last(SCORES) == [1, 2, 4, 0, 3]


def test_best_per_group() -> None:
    frame = pd.DataFrame({"trial_id": ["x", "x", "y", "z"], "val_loss": [0.4, 0.3, 0.8, np.nan]})
    assert LOSS.best_per_group(frame, "trial_id").to_dict() == {"x": 0.3, "y": 0.8}


def test_labels_and_formats() -> None:
    assert DEFAULT_OBJECTIVE.label == "validation accuracy" and DEFAULT_OBJECTIVE.format(0.91234) == "91.23%"
    assert LOSS.label == "validation loss" and LOSS.format(0.31234) == "0.3123"
    assert Objective("train_loss", "min").label == "training loss"
