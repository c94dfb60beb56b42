"""The random-search floor: the exact expected regret of n random trials, from a table's order statistics.

Random search draws each trial uniformly from the space's finite grid (each categorical uniformly, so every
(config, trial length) equally), and its training seed uniformly: every outcome of ``outcomes`` is equally
likely, with the validation score the search ranks by and the test score it is judged on. After n
independent draws the search keeps the best validation: with outcomes sorted by validation into groups of
equal value, the best falls in group g with probability F(g)^n - F(g-1)^n (F: the share of outcomes at or
below g), and then is any member of the group alike. No scheduler stops a trial here: it is the floor a
searcher with early stopping must beat at the same number of trials.
"""

from __future__ import annotations

import numpy as np

from tune_mlp.replay.table import Table


def outcomes(table: Table, lengths: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(validation, test) of every (config, trial length, seed) trial, the checkpoint picked by validation."""
    vals, tests = [], []
    for length in lengths or (table.epochs,):
        val = table.val_accuracy[:, :, :length]
        filled = np.where(np.isfinite(val), val, -np.inf)
        best = filled.argmax(axis=2)
        vals.append(np.take_along_axis(filled, best[..., None], axis=2)[..., 0].ravel())
        tests.append(np.take_along_axis(table.test_accuracy, best[..., None], axis=2)[..., 0].ravel())
    return np.concatenate(vals), np.concatenate(tests)


def expected_best_test(val: np.ndarray, test: np.ndarray, n: int) -> float:
    """E[test score of the best-validation outcome among n uniform draws with replacement]."""
    order = np.argsort(val, kind="stable")
    val, test = val[order], test[order]
    groups, starts = np.unique(val, return_index=True)
    ends = np.append(starts[1:], len(val))
    total = len(val)
    expected = 0.0
    for start, end in zip(starts, ends):
        p = (end / total) ** n - (start / total) ** n
        expected += p * float(np.mean(test[start:end]))
    return expected


def random_floor(table: Table, n: int, best: float, lengths: tuple[int, ...] | None = None) -> float:
    """Expected regret (``best`` minus test score) of random search after ``n`` trials."""
    return best - expected_best_test(*outcomes(table, lengths), n)
