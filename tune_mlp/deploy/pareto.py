"""Accuracy against size: the Pareto front of a search's kept checkpoints, and picking a small one that is good enough.

    front = pareto_front(parameters, scores, mode)        # who no other checkpoint beats on both
    index = smallest_within(parameters, scores, 0.005)    # fewest parameters within 0.005 of the best score

Pure numpy; the scores are the search's metric as each trial reported it on validation (the test set plays no part
in the choice). "Within 0.005" is an absolute difference in the metric: for accuracy, half a percentage point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tune_mlp.errors import UserInputError

PICK_RULES = ("smallest-within", "smallest-reaching")


class PickError(UserInputError, ValueError):
    """A --pick that names no rule, or that no kept checkpoint satisfies."""


def _signed(scores: Sequence[float], mode: str) -> np.ndarray:
    """Scores turned so that larger is better whatever the mode."""
    values = np.asarray(scores, np.float64)
    return values if mode == "max" else -values


def pareto_front(costs: Sequence[float], scores: Sequence[float], mode: str = "max") -> np.ndarray:
    """Boolean mask of the points no other point dominates (costs no more, scores no worse, better in one)."""
    cost, good = np.asarray(costs, np.float64), _signed(scores, mode)
    no_worse = (cost[None, :] <= cost[:, None]) & (good[None, :] >= good[:, None])
    better = (cost[None, :] < cost[:, None]) | (good[None, :] > good[:, None])
    return ~np.any(no_worse & better, axis=1)


def smallest_within(costs: Sequence[float], scores: Sequence[float], tolerance: float, mode: str = "max") -> int:
    """The cheapest point whose score is within `tolerance` of the best score (ties: the better score, then index)."""
    good = _signed(scores, mode)
    return _cheapest(costs, good, good >= np.nanmax(good) - tolerance)


def smallest_reaching(costs: Sequence[float], scores: Sequence[float], target: float, mode: str = "max") -> int | None:
    """The cheapest point whose score is at least as good as `target`; None when none is."""
    good = _signed(scores, mode)
    eligible = good >= _signed([target], mode)[0]
    return _cheapest(costs, good, eligible) if eligible.any() else None


def _cheapest(costs: Sequence[float], good: np.ndarray, eligible: np.ndarray) -> int:
    order = np.lexsort((np.arange(len(good)), -good, np.asarray(costs, np.float64)))  # cost, then score, then index
    return int(next(i for i in order if eligible[i]))


def pick(rule: str, value: float, costs: Sequence[float], scores: Sequence[float], mode: str, what: str) -> int:
    """The index `--pick RULE VALUE` chooses, or one clear error naming `what` (the experiment) and the best score."""
    if rule == "smallest-within":
        if not value >= 0:
            raise PickError(f"--pick smallest-within {value}: the tolerance must be 0 or more, e.g. 0.005")
        return smallest_within(costs, scores, value, mode)
    if rule == "smallest-reaching":
        index = smallest_reaching(costs, scores, value, mode)
        if index is None:
            best = np.nanmax(scores) if mode == "max" else np.nanmin(scores)
            raise PickError(
                f"--pick smallest-reaching {value}: no kept checkpoint of {what} reaches it (the best is {best:.4f}); "
                "give a score it reached, or smallest-within a tolerance"
            )
        return index
    raise PickError(f"--pick {rule}: not a rule; give one of {', '.join(PICK_RULES)} and a number")
