"""The metric an experiment selects by and its direction: every "best" in a report follows it.

Pure pandas helpers, so a search run with ``metric: val_loss, mode: min`` gets its minimum marked as the
best in every table, curve and picture, and ``val_accuracy`` (max) its maximum.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import pandas as pd

from tune_mlp.config import METRIC, MODE
from tune_mlp.records import SearchRecord

PREFIXES = {"val_": "validation ", "train_": "training ", "test_": "test "}


@dataclass(frozen=True)
class Objective:
    metric: str = METRIC  # a column of the trials and histories tables
    mode: str = MODE  # max | min

    @classmethod
    def of(cls, record: SearchRecord) -> Objective:
        return cls(record.metric, record.mode)

    @property
    def label(self) -> str:
        """``val_accuracy`` -> "validation accuracy": the metric's name in report prose and axis labels."""
        for prefix, word in PREFIXES.items():
            if self.metric.startswith(prefix):
                return word + self.metric[len(prefix) :].replace("_", " ")
        return self.metric.replace("_", " ")

    @property
    def is_fraction(self) -> bool:
        """Accuracies live in [0, 1] and read best as percentages; losses do not."""
        return self.metric.endswith("accuracy")

    def format(self, value: float) -> str:
        return f"{value:.2%}" if self.is_fraction else f"{value:.4f}"

    def best_index(self, scores: pd.Series) -> Hashable | None:
        """The label of the best finite score (the first on ties), None when there is none."""
        finite = scores.dropna()
        if finite.empty:
            return None
        return finite.idxmax() if self.mode == "max" else finite.idxmin()

    def cumulative_best(self, scores: pd.Series) -> pd.Series:
        """Best so far at each row, NaN rows carrying the previous best."""
        running = scores.cummax() if self.mode == "max" else scores.cummin()
        return running.ffill()

    def best_per_group(self, frame: pd.DataFrame, by: str) -> pd.Series:
        """Each group's best score (NaN-only groups dropped)."""
        grouped = frame.groupby(by)[self.metric]
        return (grouped.max() if self.mode == "max" else grouped.min()).dropna()

    def sort_best_first(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows ordered best first, missing scores last."""
        return frame.sort_values(self.metric, ascending=self.mode == "min", na_position="last", kind="stable")

    def order_best_last(self, scores: pd.Series) -> list[int]:
        """Positions from worst to best, missing scores first: the drawing order that puts the best on top."""
        key = scores.astype(float) if self.mode == "max" else -scores.astype(float)
        return list(key.reset_index(drop=True).fillna(-float("inf")).sort_values(kind="stable").index)


DEFAULT_OBJECTIVE = Objective()  # val_accuracy, max: what a search selects by unless told otherwise
