"""Old path of the budget's Tune objects: experiments written before 2026-12-06 hold them pickled by this name
in Tune's state (``experiment_state-*.json``, ``tuner.pkl``), so reading or resuming one imports it from here."""

from tune_mlp.search.tuner import BudgetSearcher, BudgetStopper

__all__ = ["BudgetSearcher", "BudgetStopper"]
