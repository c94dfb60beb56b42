"""Ensemble selection (tune_mlp.deploy.ensemble) on small arrays whose answers are known by hand, and the checks on
which checkpoints may be averaged (tune_mlp.deploy.members)."""

from __future__ import annotations

import numpy as np
import pytest

from tune_mlp.config import TrainConfig
from tune_mlp.deploy.ensemble import accuracy, average, log_loss, select_ensemble, trajectory_scores
from tune_mlp.deploy.members import EnsembleError, Member, check_members


def two_class(true_probabilities: list[float], labels: list[int]) -> np.ndarray:
    """(n, 2) probabilities giving each example's true class the probability listed."""
    p = np.asarray(true_probabilities)
    out = np.empty((len(p), 2))
    out[np.arange(len(p)), labels] = p
    out[np.arange(len(p)), 1 - np.asarray(labels)] = 1 - p
    return out


LABELS = [0, 1, 0, 1]
# A is right on the first half, B on the second: each alone is poor, their average is better than either.
A = two_class([0.9, 0.9, 0.2, 0.2], LABELS)
B = two_class([0.2, 0.2, 0.9, 0.9], LABELS)
BAD = two_class([0.3, 0.3, 0.3, 0.3], LABELS)


def test_log_loss_and_accuracy_by_hand() -> None:
    assert log_loss(A, np.array(LABELS)) == pytest.approx(-(np.log(0.9) + np.log(0.2)) / 2)
    assert accuracy(A, np.array(LABELS)) == 0.5
    assert log_loss(np.array([[0.0, 1.0]]), np.array([0])) == pytest.approx(-np.log(1e-15))  # clipped, finite


def test_complementary_members_are_averaged_half_and_half() -> None:
    selection = select_ensemble(np.stack([A, B, BAD]), np.array(LABELS), init_size=1, max_size=6)
    # A and B tie alone: A (lower index) starts; B then makes the average (0.55 everywhere); after that A and B tie
    # again and the tie goes to the one already in with the lower index, so the picks alternate.
    assert selection.picks == (0, 1, 0, 1, 0, 1)
    assert selection.trajectory[1] == pytest.approx(-np.log(0.55))
    assert selection.size == 2  # the first of the equal best points (2, 4, 6): the smallest ensemble
    assert selection.weights.tolist() == [0.5, 0.5, 0.0]
    assert selection.chosen == [0, 1]
    expected = average(np.stack([A, B, BAD]), selection.weights)
    np.testing.assert_allclose(expected, (A + B) / 2)


def test_a_tie_goes_to_a_member_already_in() -> None:
    labels = np.array([0, 1])
    z = two_class([0.8, 0.8], [0, 1])  # the best alone: it starts the ensemble
    # x is chosen so that averaging it with z loses exactly what adding z again loses: (0.8 + 1)/2 * (0.8 + x2)/2
    # = 0.8 * 0.8. x has the lower index, but the pick goes to z, already in (fewer distinct members).
    x = two_class([1.0, 2 * 0.64 / 0.9 - 0.8], [0, 1])
    bad = two_class([0.3, 0.3], [0, 1])
    probabilities = np.stack([x, bad, z])
    true = probabilities[:, [0, 1], labels]
    assert np.log(true[0] + true[2]).sum() == pytest.approx(np.log(2 * true[2]).sum(), abs=1e-14)  # the tie
    selection = select_ensemble(probabilities, labels, init_size=1, max_size=3)
    assert selection.picks[:2] == (2, 2)
    assert selection.picks[2] == 0  # afterwards x does lower the loss, and is picked


def test_the_trajectory_keeps_its_best_point_even_inside_the_start() -> None:
    """Sorted initialisation adds the best few whatever they do; the kept point may still be the best one alone."""
    good = two_class([0.95, 0.95, 0.95, 0.95], LABELS)
    selection = select_ensemble(np.stack([BAD, good, BAD]), np.array(LABELS), init_size=3, max_size=5)
    assert selection.picks[:3] == (1, 0, 2)  # by loss alone; the two equal BADs by index
    assert selection.size == 1 and selection.weights.tolist() == [0.0, 1.0, 0.0]
    assert selection.trajectory[0] == pytest.approx(-np.log(0.95))
    assert min(selection.trajectory) == selection.trajectory[0]


def test_fixed_size_takes_every_pick_and_the_trajectory_can_be_rescored() -> None:
    probabilities, labels = np.stack([A, B, BAD]), np.array(LABELS)
    selection = select_ensemble(probabilities, labels, init_size=2, max_size=5, keep_best=False)
    assert selection.size == 5 and selection.counts.sum() == 5
    losses, accuracies = trajectory_scores(probabilities, labels, selection.picks)
    np.testing.assert_allclose(losses, selection.trajectory)
    assert accuracies[1] == accuracy((A + B) / 2, labels)


def test_selection_is_deterministic_on_random_members() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 200, 10))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    labels = rng.integers(0, 10, 200)
    first, second = select_ensemble(probabilities, labels), select_ensemble(probabilities, labels)
    assert first == second
    assert first.trajectory[first.size - 1] == min(first.trajectory)
    assert first.weights.sum() == pytest.approx(1.0)
    # The ensemble's loss is what the trajectory says it is.
    assert log_loss(average(probabilities, first.weights), labels) == pytest.approx(first.trajectory[first.size - 1])


def test_selection_refuses_arrays_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"probabilities must be \(members, 4, classes\)"):
        select_ensemble(A, np.array(LABELS))


def member(checkpoint: str, dataset: str = "fashion_mnist", inputs: int = 784, **config) -> Member:
    weights = [np.zeros((inputs, 10), np.float32), np.zeros(10, np.float32)]
    return Member("t", 1, checkpoint, 0.5, TrainConfig(dataset=dataset, **config), weights)


def test_members_that_cannot_be_averaged_are_named_in_one_line() -> None:
    with pytest.raises(EnsembleError, match=r"^exp has 1 kept checkpoint with a finite score: an ensemble needs"):
        check_members([member("a")], "exp")
    with pytest.raises(EnsembleError, match=r"different input sizes \(a: 784, b: 785\)"):
        check_members([member("a"), member("b", inputs=785)], "exp")
    with pytest.raises(EnsembleError, match=r"different data sets \(a: fashion_mnist, b: mnist\)"):
        check_members([member("a"), member("b", dataset="mnist")], "exp")
    with pytest.raises(EnsembleError, match=r"different validation splits"):
        check_members([member("a"), member("b", split_seed=7)], "exp")
    check_members([member("a"), member("b")], "exp")  # the same data: no error
