"""A time budget enforced inside Ray Tune: a stopper, a searcher wrapper and a callback sharing one clock.

- ``BudgetSearcher`` stops suggesting once a proposed trial could not reach its first ASHA rung
  before the end (predicted from its size, corrected by the epoch times measured so far).
- ``BudgetStopper`` stops a trial whose next epoch would end after the deadline, and at the deadline
  ends the experiment: running trials are TERMINATED, their per-epoch checkpoints kept.
- ``BudgetCallback`` knows which trials were running when the budget ran out, for the record.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from tune_mlp.search.budget import TrialBudget, correction_factor, first_rung_seconds


@dataclass
class BudgetClock:
    """The deadline and what the budget did; one per driver run, shared by the pieces through ``clock_for``."""

    sizing: TrialBudget  # the budget's length and what sizes a trial's epochs
    deadline: float
    ended: bool = False  # the budget ended the search (the searcher stopped or the deadline passed)
    running: set[str] = field(default_factory=set)
    stopped: set[str] = field(default_factory=set)  # trials the budget cut short
    measured: list[tuple[float, float]] = field(default_factory=list)  # (measured, predicted) epoch seconds

    def remaining(self) -> float:
        return self.deadline - time.time()

    @property
    def seconds(self) -> float:
        return self.sizing.seconds


# Tune pickles the stopper and searcher (tuner.pkl, searcher state); copies in this process find the
# clock by id, and a restored driver (another process) finds none and starts a fresh budget.
_CLOCKS: dict[str, BudgetClock] = {}


class _UsesClock:
    def __init__(self, clock_id: str, seconds: float) -> None:
        self.clock_id, self.seconds = clock_id, seconds

    @property
    def clock(self) -> BudgetClock:
        found = _CLOCKS.get(self.clock_id)
        if found is None:  # restored in a new driver: the budget counts from now
            found = BudgetClock(TrialBudget(self.seconds, 1, 0, 1, 1), time.time() + self.seconds)
            _CLOCKS[self.clock_id] = found
        return found


def start_clock(sizing: TrialBudget, started: float) -> str:
    """A budget counted from ``started`` (time.time() when the driver began); the id the Tune pieces share it by."""
    clock_id = uuid.uuid4().hex
    _CLOCKS[clock_id] = BudgetClock(sizing, started + sizing.seconds)
    return clock_id


def get_clock(clock_id: str) -> BudgetClock:
    return _CLOCKS[clock_id]


class BudgetStopper(_UsesClock, tune.Stopper):
    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        clock = self.clock
        if "config" in result and result.get("time_this_iter_s"):
            clock.measured.append((float(result["time_this_iter_s"]), clock.sizing.epoch_seconds(result["config"])))
        # Another epoch would not finish in time: stop now, at a reported epoch with its checkpoint.
        if clock.remaining() < float(result.get("time_this_iter_s", 0.0)):
            clock.stopped.add(trial_id)
            clock.ended = True
            return True
        return False

    def stop_all(self) -> bool:
        clock = self.clock
        if clock.remaining() > 0:
            return False
        if not clock.ended:
            clock.stopped |= clock.running
        clock.ended = True
        return True


class BudgetCallback(_UsesClock, tune.Callback):
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.clock.running.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.clock.running.discard(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.clock.running.discard(trial.trial_id)


class BudgetSearcher(_UsesClock, Searcher):
    """Wraps a searcher; once a proposal cannot reach its first rung in time, the search is FINISHED."""

    def __init__(self, searcher: Searcher, clock_id: str, seconds: float) -> None:
        _UsesClock.__init__(self, clock_id, seconds)
        Searcher.__init__(self, metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        clock = self.clock
        if clock.remaining() <= 0:
            clock.ended = True
            return Searcher.FINISHED
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        grace = clock.sizing.grace_period
        needed = first_rung_seconds(clock.sizing.epoch_seconds(config), grace, correction_factor(clock.measured))
        if needed > clock.remaining():
            self.searcher.on_trial_complete(trial_id, error=True)  # withdrawn: not left pending in TPE
            clock.ended = True
            return Searcher.FINISHED
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def get_state(self) -> dict:
        return {}  # the budget is per driver run; the wrapped searcher saves its own state

    def set_state(self, state: dict) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)
