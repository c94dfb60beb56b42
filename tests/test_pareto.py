"""Accuracy against size (tune_mlp.deploy.pareto) on points whose front and picks are known by hand."""

from __future__ import annotations

import pytest

from tune_mlp.deploy.pareto import PickError, pareto_front, pick, smallest_reaching, smallest_within

#         0      1      2      3      4      5
COSTS = [100, 200, 200, 400, 800, 100]
SCORES = [0.80, 0.85, 0.84, 0.90, 0.905, 0.80]


def test_the_front_is_what_nothing_beats_on_both() -> None:
    # 2 is beaten by 1 (same cost, better); 5 ties 0 exactly, and a tie dominates nothing: both stay
    assert pareto_front(COSTS, SCORES).tolist() == [True, True, False, True, True, True]
    # a loss is minimised: the same points, scores negated, give the same front
    assert pareto_front(COSTS, [-s for s in SCORES], mode="min").tolist() == pareto_front(COSTS, SCORES).tolist()


def test_smallest_within_a_tolerance_of_the_best() -> None:
    assert smallest_within(COSTS, SCORES, 0.0) == 4  # only the best itself
    assert smallest_within(COSTS, SCORES, 0.005) == 3  # 0.90 is within 0.005 of 0.905, at half the cost
    assert smallest_within(COSTS, SCORES, 0.06) == 1
    assert smallest_within(COSTS, SCORES, 1.0) == 0  # every point: the cheapest, the lower index of a tie
    assert smallest_within(COSTS, [-s for s in SCORES], 0.005, mode="min") == 3


def test_smallest_reaching_a_score() -> None:
    assert smallest_reaching(COSTS, SCORES, 0.85) == 1
    assert smallest_reaching(COSTS, SCORES, 0.95) is None
    assert smallest_reaching(COSTS, [-s for s in SCORES], -0.85, mode="min") == 1  # a loss at most -0.85


def test_a_pick_nothing_satisfies_is_one_clear_error() -> None:
    assert pick("smallest-within", 0.005, COSTS, SCORES, "max", "exp") == 3
    with pytest.raises(PickError, match=r"^--pick smallest-reaching 0.95: no kept checkpoint of exp reaches it "
                                        r"\(the best is 0.9050\)"):  # fmt: skip
        pick("smallest-reaching", 0.95, COSTS, SCORES, "max", "exp")
    with pytest.raises(PickError, match=r"the tolerance must be 0 or more"):
        pick("smallest-within", -0.1, COSTS, SCORES, "max", "exp")
    with pytest.raises(PickError, match=r"^--pick fastest: not a rule; give one of smallest-within, smallest-reach"):
        pick("fastest", 1, COSTS, SCORES, "max", "exp")
