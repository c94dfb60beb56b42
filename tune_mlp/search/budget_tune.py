"""A time budget enforced inside Ray Tune: Tune's own ``TuneConfig(time_budget_s)`` plus two pieces that size to it.

Tune's ``TimeoutStopper`` (made by ``time_budget_s``) ends the experiment when the budget is spent and
keeps the *remaining* budget in its saved state, so ``Tuner.restore`` continues the same budget. Two pieces
of ours need the end time too; each holds it as a plain value (an absolute wall-clock ``deadline``) and
saves the seconds left at Tune's checkpoint, so a restored copy counts on from there as the TimeoutStopper does:

- ``BudgetStopper`` stops a trial whose next epoch would end after the deadline, at a reported epoch
  with its checkpoint, instead of losing a half-run epoch at the end.
- ``BudgetSearcher`` stops suggesting once a proposed trial could not reach its first ASHA rung in time
  (predicted from its size, corrected by the epoch times measured so far).
"""

from __future__ import annotations

import time
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from tune_mlp.search.budget import TrialBudget, correction_factor, first_rung_seconds


def _left(deadline: float) -> float:
    return deadline - time.time()


class BudgetStopper(tune.Stopper):
    """Stops a trial whose next epoch would not finish before ``deadline``; the experiment's end is Tune's."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return _left(self.deadline) < float(result.get("time_this_iter_s") or 0.0)

    def stop_all(self) -> bool:
        return False  # Tune's TimeoutStopper ends the experiment

    # Tune pickles the stopper into its experiment state at every checkpoint and restores it from there.
    def __getstate__(self) -> dict[str, Any]:
        return {"seconds_left": _left(self.deadline)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.deadline = time.time() + state["seconds_left"]


class BudgetSearcher(Searcher):
    """Wraps a searcher; once a proposal cannot reach its first rung before ``deadline``, the search is FINISHED."""

    def __init__(self, searcher: Searcher, sizing: TrialBudget, deadline: float) -> None:
        Searcher.__init__(self, metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.sizing, self.deadline = searcher, sizing, deadline
        self.measured: list[tuple[float, float]] = []  # (measured, predicted) epoch seconds
        self.predicted: dict[str, float] = {}  # trial_id -> predicted epoch seconds (results arrive flattened)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        if _left(self.deadline) <= 0:
            return Searcher.FINISHED
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        predicted = self.predicted[trial_id] = self.sizing.epoch_seconds(config)
        needed = first_rung_seconds(predicted, self.sizing.grace_period, correction_factor(self.measured))
        if needed > _left(self.deadline):
            self.searcher.on_trial_complete(trial_id, error=True)  # withdrawn: not left pending in TPE
            return Searcher.FINISHED
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.predicted and result.get("time_this_iter_s"):
            self.measured.append((float(result["time_this_iter_s"]), self.predicted[trial_id]))
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # Tune saves a wrapper's state with get_state (the wrapped searcher saves its own) and restores it
    # with set_state; the deadline travels as the seconds left.
    def get_state(self) -> dict[str, Any]:
        return {"measured": self.measured, "predicted": self.predicted, "seconds_left": _left(self.deadline)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.measured, self.predicted = list(state["measured"]), dict(state["predicted"])
        self.deadline = time.time() + state["seconds_left"]


def budget_cut(last_results: list[dict[str, Any]], deadline: float | None = None) -> list[str]:
    """The trials the budget cut short, from each trial's last report in one driver run of a part.

    A trial cut by the budget (by ``BudgetStopper``, or running when Tune's TimeoutStopper ended the
    experiment) stopped before its own last epoch, and its next epoch would have ended after the deadline
    (``BudgetStopper``'s rule) or after the experiment's last report, whichever is earlier. Tune's
    ``timestamp`` is whole seconds, hence the second of slack.
    """
    reported = [r for r in last_results if r.get("timestamp") is not None]
    if not reported:
        return []
    end = max(float(r["timestamp"]) for r in reported)
    cutoff = min(end, deadline) if deadline else end
    return sorted(
        str(r["trial_id"])
        for r in reported
        if int(r.get("epoch", 0)) < int(r.get("trial_epochs", 0))
        and float(r["timestamp"]) + 1.0 + float(r.get("time_this_iter_s") or 0.0) > cutoff
    )
