"""The surrogate for configs between a table's samples: the nearest recorded config, and its held-out error.

A sampled table (the default space: 150 configs drawn from continuous ranges) cannot hold the config a
searcher suggests, so the replay trains it as the nearest config it has: distance is L1 over the sampled
keys, numbers scaled to [0, 1] over the table's range (log scale where the range spans 10x or more, as the
learning rate's log-uniform prior does), a different category counting 1. The replayed trial then has
that config's real curve, its noise across seeds and its epoch costs.

``holdout_error`` says how far that is from the truth: each config in turn is left out and predicted
from the others (its nearest neighbour, or the mean of its ``k`` nearest), and the error of its mean
test accuracy over seeds at the last epoch is reported with the rank correlation of predicted and true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tune_mlp.replay.table import Table, _number


class NearestConfig:
    """A suggested config -> the index of the table's nearest config (exact when the table has it)."""

    def __init__(self, table: Table) -> None:
        self.keys = table.keys
        self.numeric: dict[str, tuple[float, float, bool]] = {}  # key -> (low, high, log)
        for key in table.keys:
            values = [_number(c[key]) for c in table.configs]
            if all(v is not None for v in values):
                low, high = min(values), max(values)
                log = low > 0 and high / low >= 10
                self.numeric[key] = (np.log10(low), np.log10(high), True) if log else (low, high, False)
        self.points = np.array([self._features(c) for c in table.configs])
        self.categories = np.array([[str(c[k]) for k in self.keys if k not in self.numeric] for c in table.configs])

    def _features(self, config: dict[str, Any]) -> list[float]:
        out = []
        for key, (low, high, log) in self.numeric.items():
            value = float(config[key])
            value = np.log10(value) if log and value > 0 else value
            out.append((value - low) / (high - low) if high > low else 0.0)
        return out

    def distances(self, config: dict[str, Any]) -> np.ndarray:
        numeric = np.abs(self.points - np.array(self._features(config))).sum(axis=1) if self.numeric else 0.0
        cats = np.array([str(config[k]) for k in self.keys if k not in self.numeric])
        return numeric + (self.categories != cats).sum(axis=1) if cats.size else numeric + 0.0

    def __call__(self, config: dict[str, Any]) -> int:
        return int(np.argmin(self.distances(config)))  # ties: the first config of the table


@dataclass(frozen=True)
class HoldoutError:
    k: int
    mae: float  # mean absolute error of a held-out config's mean final test accuracy
    rank_correlation: float  # Spearman, predicted vs true over all configs
    configs: int

    def line(self) -> str:
        return (f"surrogate (nearest {self.k}) on held-out configs: mean abs error {self.mae:.4f} test accuracy, "
                f"rank correlation {self.rank_correlation:.2f} ({self.configs} configs, leave-one-out)")  # fmt: skip


def holdout_error(table: Table, k: int = 1) -> HoldoutError:
    """Leave each config out, predict its mean final test accuracy from its ``k`` nearest others."""
    near = NearestConfig(table)
    truth = np.nanmean(table.test_accuracy[:, :, -1], axis=1)
    predicted = np.empty_like(truth)
    for i, config in enumerate(table.configs):
        d = near.distances(config).astype(float)
        d[i] = np.inf
        order = np.argsort(d, kind="stable")[:k]
        predicted[i] = np.nanmean(truth[order])
    ok = np.isfinite(truth) & np.isfinite(predicted)
    return HoldoutError(k, float(np.mean(np.abs(predicted[ok] - truth[ok]))), _spearman(predicted[ok], truth[ok]),
                        int(ok.sum()))  # fmt: skip


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")
