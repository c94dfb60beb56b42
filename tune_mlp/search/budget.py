"""Old path of ``TrialBudget``: experiments written before 2026-12-06 hold it pickled by this name in
``tuner.pkl``, so resuming one imports it from here."""

from tune_mlp.search.plan import TrialBudget

__all__ = ["TrialBudget"]
