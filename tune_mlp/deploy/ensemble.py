"""Ensemble selection (Caruana et al., ICML 2004) as pure numpy: greedy forward selection with replacement.

    selection = select_ensemble(probabilities, labels)   # (members, n, classes) softmax outputs, (n,) labels
    weights = selection.weights                           # (members,), times picked / ensemble size

Nothing is retrained: the ensemble is the weighted average of the members' softmax outputs. The guards are
auto-sklearn's and AutoGluon's: start from the best few members (sorted initialisation), at most ``max_size``
picks, keep the best point of the trajectory (so the ensemble is never worse on the selection set than the
single best member), and break ties in favour of a member already in (fewer distinct members). The caller
gives it the *validation* split only: choosing on the test set would make the test score a biased one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INIT_SIZE = 5  # the best few members the selection starts from (Caruana's sorted initialisation)
MAX_SIZE = 50  # picks at most (auto-sklearn's ensemble_size)
EPSILON = 1e-15  # probabilities are clipped here before the log, as scikit-learn's log_loss does
TIE = 1e-12  # candidates this close to the best loss are tied (equal members give equal losses up to rounding)


@dataclass(frozen=True)
class Selection:
    """The picks in order (member indices), the loss after each pick, and the best point kept."""

    picks: tuple[int, ...]  # every pick made, in order (up to max_size)
    trajectory: tuple[float, ...]  # log loss of the ensemble of picks[: k + 1], for each k
    size: int  # picks kept: the trajectory's best point (the first one if several tie)
    members: int  # how many members the selection chose from

    @property
    def counts(self) -> np.ndarray:
        """Times each member was picked in the kept ensemble, (members,)."""
        return np.bincount(np.asarray(self.picks[: self.size], np.int64), minlength=self.members)

    @property
    def weights(self) -> np.ndarray:
        """Each member's weight in the kept ensemble (times picked / size), (members,); sums to 1."""
        return self.counts / self.size

    @property
    def chosen(self) -> list[int]:
        """The members of the kept ensemble (weight > 0), heaviest first, ties by index."""
        counts = self.counts
        return sorted(np.flatnonzero(counts).tolist(), key=lambda m: (-counts[m], m))


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log probability of the true class; (n, classes) probabilities, (n,) labels."""
    true = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(true, EPSILON, 1.0))))


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def average(probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted average of the members' outputs: (members, n, classes), (members,) -> (n, classes)."""
    return np.tensordot(np.asarray(weights, np.float64), probabilities, axes=1)


def select_ensemble(
    probabilities: np.ndarray,
    labels: np.ndarray,
    init_size: int = INIT_SIZE,
    max_size: int = MAX_SIZE,
    keep_best: bool = True,
) -> Selection:
    """Greedy forward selection with replacement on log loss (see the module's docstring).

    ``probabilities`` is (members, n, classes), each member's softmax output on the selection set. With
    ``keep_best=False`` the ensemble is all ``max_size`` picks (auto-sklearn's fixed ``ensemble_size``).
    """
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels)
    if probabilities.ndim != 3 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must be (members, {len(labels)}, classes), got {probabilities.shape}")
    if init_size < 1 or max_size < 1:
        raise ValueError(f"init_size and max_size must be at least 1, got {init_size} and {max_size}")
    members = len(probabilities)
    # Log loss reads only the true class's probability, so the search runs on (members, n), not the whole array.
    true = probabilities[:, np.arange(len(labels)), labels]
    alone = -np.log(np.clip(true, EPSILON, 1.0)).mean(axis=1)
    order = np.argsort(alone, kind="stable")  # best first; equal losses by index
    picks: list[int] = []
    trajectory: list[float] = []
    total = np.zeros(len(labels))
    for k in range(max_size):
        if k < min(init_size, members):
            pick = int(order[k])
        else:
            candidates = -np.log(np.clip((total + true) / (k + 1), EPSILON, 1.0)).mean(axis=1)
            tied = np.flatnonzero(candidates <= candidates.min() + TIE)
            inside = [m for m in tied if m in picks]  # AutoGluon: a tie goes to a member already in
            pick = int(inside[0] if inside else tied[0])
        picks.append(pick)
        total += true[pick]
        trajectory.append(float(-np.mean(np.log(np.clip(total / (k + 1), EPSILON, 1.0)))))
    best = int(np.argmin(trajectory)) if keep_best else max_size - 1  # argmin: the first of equal minima
    return Selection(tuple(picks), tuple(trajectory), best + 1, members)


def trajectory_scores(
    probabilities: np.ndarray, labels: np.ndarray, picks: tuple[int, ...]
) -> tuple[list[float], list[float]]:
    """Log loss and accuracy of the ensemble of ``picks[: k + 1]`` for every k, on any labelled set (reporting)."""
    total = np.zeros(probabilities.shape[1:])
    losses, accuracies = [], []
    for k, pick in enumerate(picks):
        total += probabilities[pick]
        losses.append(log_loss(total / (k + 1), labels))
        accuracies.append(accuracy(total, labels))
    return losses, accuracies
