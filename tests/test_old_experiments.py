"""Experiments written before the search layer's modules were merged (2026-12-06) still read and resume.

Tune keeps some of our objects pickled by module path in its state (the budget's stopper in
``experiment_state-*.json``, its searcher and ``TrialBudget`` in ``tuner.pkl``, W&B distributions in the searcher's
space). These are the paths such experiments hold (found by scanning the state of searches made by 9470bde):
unpickling resolves each to the class the search uses now.
"""

from __future__ import annotations

import io
import pickle

import pytest

from tune_mlp.search.plan import TrialBudget
from tune_mlp.search.tune_space import SweepDistribution
from tune_mlp.search.tuner import BudgetSearcher, BudgetStopper

OLD_PATHS = [
    ("tune_mlp.search.budget_tune", "BudgetStopper", BudgetStopper),
    ("tune_mlp.search.budget_tune", "BudgetSearcher", BudgetSearcher),
    ("tune_mlp.search.budget", "TrialBudget", TrialBudget),
    ("tune_mlp.search.distributions", "SweepDistribution", SweepDistribution),
]


@pytest.mark.parametrize(("module", "name", "now"), OLD_PATHS, ids=[f"{m}.{n}" for m, n, _ in OLD_PATHS])
def test_an_old_pickle_path_resolves_to_the_class_used_now(module: str, name: str, now: type) -> None:
    # A pickle's GLOBAL opcode names the module and the class, as Tune's state holds them.
    data = b"c" + module.encode() + b"\n" + name.encode() + b"\n."
    assert pickle.Unpickler(io.BytesIO(data)).load() is now
