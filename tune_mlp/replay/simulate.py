"""Replay a search over a learning-curve table in simulated time, with the real Ray Tune searcher and scheduler.

    from tune_mlp.replay.simulate import simulate
    run = simulate(table, searcher, scheduler, workers=8, samples=20, seed=0)

``Replayer`` plays Tune's controller: W workers, an event queue keyed by simulated time (a trial's epoch
costs that row's measured training + evaluation seconds), and the calls a real run makes, in its order:
``searcher.suggest`` while the searcher has room (up to ``max_pending`` trials waiting, as
``tune_controller._get_max_pending_trials``: a ``ConcurrencyLimiter``'s limit, else 1), then
``scheduler.choose_trial_to_run`` for each free worker; on each epoch's result
``scheduler.on_trial_result`` then, unless it says STOP, ``searcher.on_trial_result``; a stopped or finished
trial goes through ``stop_trial`` (``scheduler.on_trial_complete`` + ``searcher.on_trial_complete`` with its
last result) and frees its worker; PAUSE (HyperBand for BOHB) frees the worker and keeps the trial for
``choose_trial_to_run``. No Ray cluster: ``ray.init`` is never called.

The schedulers need only their public interface from a trial (``trial_id``, ``status``, ``config``,
``is_saving``, hashable) and from the controller (``get_trials``, ``stop_trial``, ``search_alg.searcher``
for BOHB's pause hook); the status names are Ray's own ``Trial.PENDING`` etc. Written against Ray 2.60's
``TuneController._process_trial_result`` and ``stop_trial``; ``tests/replay`` pins the calls it relies on.
A function trainable's final duplicate result (sent when it returns) is not replayed: ASHA ignores a
repeated milestone and the searchers see the same result in ``on_trial_complete``.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.experiment.trial import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from tune_mlp.replay.table import Table, config_key

METRIC, MODE = "val_accuracy", "max"
NEAR = 0.002  # "within 0.002 of the optimum"


@dataclass(eq=False)
class SimTrial:
    """What a scheduler reads from a Tune trial."""

    trial_id: str
    config: dict[str, Any]
    row: int  # the table's config index
    seed: int  # the table's seed index (the trial's training seed)
    length: int  # epochs it trains if never stopped
    status: str = Trial.PENDING
    epoch: int = 0  # epochs reported
    last_result: dict[str, Any] = field(default_factory=dict)
    is_saving: bool = False

    def __repr__(self) -> str:
        return f"SimTrial({self.trial_id}, row={self.row}, epoch={self.epoch}, {self.status})"


@dataclass(frozen=True)
class Report:
    """One epoch's result as the search saw it."""

    time: float  # simulated seconds since the search started
    trial_id: str
    row: int
    seed: int
    epoch: int
    val: float
    test: float
    decision: str


@dataclass
class Run:
    """A replayed search: every report in order, and how each trial ended."""

    reports: list[Report]
    ended: dict[str, tuple[str, int]]  # trial_id -> (STOP by scheduler | DONE | PAUSED at the end, epochs)
    events: list[tuple[float, str, str]]  # (time, trial_id, what) for start / result / stop / pause / done
    duration: float

    def picked(self, until: float = float("inf")) -> Report | None:
        """The checkpoint the search would pick by ``until``: the best validation epoch over all trials."""
        best = None
        for report in self.reports:
            if report.time <= until and np.isfinite(report.val) and (best is None or report.val > best.val):
                best = report
        return best


class _SearchAlg:
    """``tune_controller.search_alg``: HyperBandForBOHB reaches the searcher through it."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher


class Replayer:
    """Tune's controller, in simulated time over a table."""

    def __init__(self, table: Table, searcher: Searcher, scheduler: TrialScheduler, workers: int, samples: int,
                 seed: int, mapper: Any = None, max_pending: int | None = None,
                 training_seed: int | None = None) -> None:  # fmt: skip
        self.table, self.searcher, self.scheduler = table, searcher, scheduler
        # A real search trains every trial with the same seed (``TrainConfig.seed``, 0 unless the sweep sets it):
        # a table seed index replays that; None draws each trial's seed from the table's (seed noise averaged).
        self.training_seed = training_seed
        self.workers, self.samples = workers, samples
        self.search_alg = _SearchAlg(searcher)
        self.rng = np.random.default_rng(seed)
        self.mapper = mapper or ExactMapper(table)
        self.max_pending = max_pending if max_pending is not None else _max_pending(searcher)
        self.trials: list[SimTrial] = []
        self.now = 0.0
        self.queue: list[tuple[float, int, SimTrial]] = []
        self.order = itertools.count()
        self.reports: list[Report] = []
        self.events: list[tuple[float, str, str]] = []
        self.ended: dict[str, tuple[str, int]] = {}
        self.finished_suggesting = False

    # -- the controller interface the schedulers call --
    def get_trials(self) -> list[SimTrial]:
        return self.trials

    def stop_trial(self, trial: SimTrial) -> None:
        """As ``TuneController.stop_trial``: a waiting trial is removed, a running one completed."""
        if trial.status in (Trial.ERROR, Trial.TERMINATED):
            return
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
            self.searcher.on_trial_complete(trial.trial_id)
        else:
            self.scheduler.on_trial_complete(self, trial, trial.last_result)
            self.searcher.on_trial_complete(trial.trial_id, result=trial.last_result)
        self._terminate(trial, "stop")

    # -- the replay --
    def run(self) -> Run:
        self._fill()
        while self.queue:
            self.now, _, trial = heapq.heappop(self.queue)
            self._result(trial)
            self._fill()
        for trial in self.trials:
            if trial.trial_id not in self.ended:
                self.ended[trial.trial_id] = (trial.status, trial.epoch)
        return Run(self.reports, self.ended, self.events, self.now)

    def _running(self) -> int:
        return sum(1 for t in self.trials if t.status == Trial.RUNNING)

    def _fill(self) -> None:
        """Start what the scheduler picks on free workers, and ask the searcher while it has room."""
        while True:
            progressed = False
            while self._running() < self.workers and (trial := self.scheduler.choose_trial_to_run(self)):
                self._start(trial)
                progressed = True
            pending = sum(1 for t in self.trials if t.status == Trial.PENDING)
            if pending < self.max_pending and self._suggest():
                progressed = True
            if not progressed:
                return

    def _suggest(self) -> bool:
        if self.finished_suggesting or len(self.trials) >= self.samples:
            return False
        trial_id = f"{len(self.trials):05d}"
        config = self.searcher.suggest(trial_id)
        if config is None:
            return False
        if config == Searcher.FINISHED:
            self.finished_suggesting = True
            return False
        row = self.mapper(config)
        seed = self.training_seed if self.training_seed is not None else int(self.rng.integers(len(self.table.seeds)))
        length = min(int(config.get("epochs", self.table.epochs)), int(self.table.lengths[row, seed]))
        trial = SimTrial(trial_id, config, row, seed, length)
        self.trials.append(trial)
        self.scheduler.on_trial_add(self, trial)
        return True

    def _start(self, trial: SimTrial) -> None:
        if trial.status == Trial.PAUSED:
            self.events.append((self.now, trial.trial_id, "resume"))
        else:
            self.events.append((self.now, trial.trial_id, "start"))
        trial.status = Trial.RUNNING
        self._schedule_epoch(trial)

    def _schedule_epoch(self, trial: SimTrial) -> None:
        cost = float(self.table.seconds[trial.row, trial.seed, trial.epoch])
        heapq.heappush(self.queue, (self.now + cost, next(self.order), trial))

    def _result(self, trial: SimTrial) -> None:
        trial.epoch += 1
        i, s, e = trial.row, trial.seed, trial.epoch - 1
        val = float(self.table.val_accuracy[i, s, e])
        done = trial.epoch >= trial.length
        result = {
            METRIC: val, "val_loss": float(self.table.val_loss[i, s, e]), "epoch": trial.epoch,
            "training_iteration": trial.epoch, "time_total_s": self.now, "trial_id": trial.trial_id, "done": done,
            "hyperband_info": {"budget": trial.epoch},  # what TuneBOHB learns from without HyperBandForBOHB
        }  # fmt: skip
        decision = self.scheduler.on_trial_result(self, trial, result)
        if decision != TrialScheduler.STOP:
            self.searcher.on_trial_result(trial.trial_id, result)
        trial.last_result = result
        test = float(self.table.test_accuracy[i, s, e])
        self.reports.append(Report(self.now, trial.trial_id, i, s, trial.epoch, val, test, decision))
        self.events.append((self.now, trial.trial_id, f"result {trial.epoch} {decision}"))
        if not np.isfinite(val):  # the trainable stops a diverged trial itself
            done = True
        if decision == TrialScheduler.STOP or done:
            result["done"] = True  # as Tune marks a stopped trial's last result
            self.scheduler.on_trial_complete(self, trial, result)
            self.searcher.on_trial_complete(trial.trial_id, result=result)
            self._terminate(trial, "stop" if decision == TrialScheduler.STOP and not done else "done")
        elif decision == TrialScheduler.PAUSE:
            trial.status = Trial.PAUSED
            self.events.append((self.now, trial.trial_id, "pause"))
        else:
            self._schedule_epoch(trial)

    def _terminate(self, trial: SimTrial, how: str) -> None:
        if trial.status == Trial.RUNNING:  # a running trial stopped by another's result: drop its next epoch
            self.queue = [item for item in self.queue if item[2] is not trial]
            heapq.heapify(self.queue)
        trial.status = Trial.TERMINATED
        self.ended[trial.trial_id] = ("DONE" if how == "done" else "STOP", trial.epoch)
        self.events.append((self.now, trial.trial_id, how))


def _max_pending(searcher: Searcher) -> int:
    """Ray 2.60's ``_get_max_pending_trials`` for a ``Searcher``: the concurrency limit, else 1."""
    inner = searcher
    while inner is not None:
        if isinstance(inner, ConcurrencyLimiter):
            return inner.max_concurrent
        inner = getattr(inner, "searcher", None)
    return 1


class ExactMapper:
    """A suggested config -> the table's config index (the table holds every config of its space)."""

    def __init__(self, table: Table) -> None:
        self.keys, self.index = table.keys, table.index()

    def __call__(self, config: dict[str, Any]) -> int:
        key = config_key(config, self.keys)
        if key not in self.index:
            raise KeyError(f"config {config} is not in the table (its keys: {self.keys})")
        return self.index[key]


def simulate(table: Table, searcher: Searcher, scheduler: TrialScheduler, *, space: dict[str, Any], workers: int,
             samples: int, seed: int, mapper: Any = None, training_seed: int | None = None) -> Run:  # fmt: skip
    """Replay one search: the searcher and scheduler get the space, metric and mode as ``Tuner`` gives them.
    ``training_seed``: the table's seed index every trial trains with (None: drawn per trial)."""
    searcher.set_search_properties(METRIC, MODE, space)
    scheduler.set_search_properties(METRIC, MODE)
    return Replayer(table, searcher, scheduler, workers, samples, seed, mapper, training_seed=training_seed).run()


# -- scores --
def picked_test(table: Table, row: int, seed: int, length: int) -> float:
    """Test accuracy of the checkpoint a run of ``length`` epochs would be picked by (its best validation epoch)."""
    val = table.val_accuracy[row, seed, :length]
    return float(table.test_accuracy[row, seed, int(np.nanargmax(val))]) if np.isfinite(val).any() else np.nan


def optimum(table: Table, lengths: tuple[int, ...] | None = None) -> tuple[float, int, int]:
    """The space's best config by mean test accuracy over seeds (each seed's checkpoint picked by validation):
    (mean test accuracy, config index, epochs). ``lengths``: the trial lengths the space allows."""
    best = (-np.inf, -1, 0)
    for length in lengths or (table.epochs,):
        for row in range(len(table.configs)):
            tests = [picked_test(table, row, s, length) for s in range(len(table.seeds))]
            score = float(np.mean(tests)) if np.isfinite(tests).all() else -np.inf
            best = max(best, (score, row, length), key=lambda b: b[0])
    return best


def regret_curve(run: Run, best: float, times: list[float]) -> list[float]:
    """Regret of the pick at each simulated time (NaN before the first report)."""
    out = []
    for t in times:
        report = run.picked(t)
        out.append(best - report.test if report else np.nan)
    return out


def time_to_near(run: Run, best: float, near: float = NEAR) -> float:
    """The first simulated time the pick's regret is within ``near`` (inf if never)."""
    top = -np.inf
    for report in sorted(run.reports, key=lambda r: r.time):
        if np.isfinite(report.val) and report.val > top:
            top = report.val
            if best - report.test <= near:
                return report.time
    return float("inf")
