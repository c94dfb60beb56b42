"""How trials use Ray actors: reused (TensorFlow stays imported and warm), but replaced every few trials.

TensorFlow never evicts an XLA program from its compilation cache: every trial compiles new
programs (a new ``tf.function`` per Trainer), and a reused actor keeps them all, ~10 MB a trial
(measured by ``scripts/bench_soak.py``; releasing the Trainer, ``gc``, ``malloc_trim`` and a new
eager context do not give it back). Only the process ending does. So the search's workers are
replaced by generations, every ``trials_per_actor x slots`` trials.

Tune reuses a finished trial's actor only for a trial whose resource request is equal, and
``tune.with_resources`` accepts a callable that makes each trial's request from its config. The
searcher's wrapper ``WorkerGenerations`` stamps each proposal with its generation (``GENERATION_KEY``),
counting proposals in its own state, which Tune saves and restores with the searcher's; ``TrialResources``
turns the stamp into the same one-bundle request with one of two placement strategies that mean the same
for a single bundle (PACK and SPREAD): a trial of the new generation cannot take an old actor, and Tune
stops the old ones it no longer needs. Trials of one generation keep reusing each other's actors.

The count is of trials proposed, not trials per worker: Ray 2.60 has no per-actor cap (a reused trial
whose ``reset_config()`` declines ERRORs), so a worker runs ``trials_per_actor`` trials on average.
Searches without a searcher (Tune's variant generator: grid, or random without points) are not stamped
and keep their workers throughout.

A worker that is starting is kept (``keep_starting_workers``): Tune would hand a finished trial's worker to a
trial whose own worker is still starting and kill that one half-started.
"""

from __future__ import annotations

from typing import Any

from ray import tune
from ray.tune.search import Searcher

# Equivalent for a one-bundle placement group; they differ only so Tune sees two different requests.
_STRATEGIES = ("PACK", "SPREAD")

# The config key of a trial's worker generation: set by WorkerGenerations, read by TrialResources; not a
# hyperparameter (the trainable, the results and W&B drop it: `hyperparameters`).
GENERATION_KEY = "worker_generation"

# Up to this many slots a search replaces its workers every 4 x slots trials; above it, unless --trials-per-actor says
# otherwise, a worker runs every trial it is given. Replacing a generation restarts every slot's worker at once: at
# 32 slots, 200 stand-in trials took 243 s with one such change, 105 s without, ~126 s in bare Tune, while a worker
# reused throughout grows ~10-15 MB a trial and a many-slot search spreads its trials over many workers
# (1,000 trials on 64 slots: ~16 a worker, ~+200 MB on ~1 GB).
RECYCLE_MAX_SLOTS = 8


def default_trials_per_actor(slots: int) -> int:
    """``--trials-per-actor`` when not given: 4 up to ``RECYCLE_MAX_SLOTS`` slots, else 0 (never replaced)."""
    return 4 if slots <= RECYCLE_MAX_SLOTS else 0


def generation(trial_index: int, trials_per_actor: int, slots: int) -> int:
    """Which generation of actors the ``trial_index``-th trial (0-based) runs in; 0 forever if never replaced."""
    if trials_per_actor <= 0:
        return 0
    return trial_index // (trials_per_actor * max(slots, 1))


def hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's config without the generation stamp: what it trains with, and what the results show."""
    return {key: value for key, value in config.items() if key != GENERATION_KEY}


class WorkerGenerations(Searcher):
    """Wraps the search's searcher: each proposal carries the generation of workers that runs it."""

    def __init__(self, searcher: Searcher, trials_per_actor: int, slots: int) -> None:
        Searcher.__init__(self, metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.trials_per_actor, self.slots = searcher, trials_per_actor, slots
        self.proposed = 0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        stamp = generation(self.proposed, self.trials_per_actor, self.slots)
        self.proposed += 1
        return {**config, GENERATION_KEY: stamp}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # Tune's SearchGenerator saves each wrapper's get_state (the innermost searcher saves its own) with the
    # experiment and restores it with set_state: a resumed search goes on counting where it stopped.
    def get_state(self) -> dict[str, Any]:
        return {"proposed": self.proposed}

    def set_state(self, state: dict[str, Any]) -> None:
        self.proposed = int(state["proposed"])


# The Ray release keep_starting_workers was checked against: it replaces a private method of Tune's controller,
# so tests/test_actors.py fails on another version until the method is re-read.
KEEP_STARTING_CHECKED_RAY = "2.60.0"


def keep_starting_workers() -> None:
    """Tune reuses a finished trial's worker for a waiting trial only if that trial's own worker is not starting.

    Ray 2.60's ``TuneController._maybe_reuse_cached_actor`` gives a cached worker to a waiting trial and removes
    the worker requested for it. That is right while the request waits for resources (ray#36020: on a cluster
    that has yet to scale up), but Tune also does it once the request has its CPU and the worker process is
    importing: when workers start slower than trials finish, every finished trial kills a starting worker and
    the new trial starts another (200 one-second trials on 32 slots of 2 cores: only 20 workers ever ran a
    trial, 148 were requested and removed; docs/benchmarks.md, Scale run 15, has the before/after). With this
    the trial waits for its own worker, and the cached one goes to the next new trial. It changes Tune's class,
    so every Tuner of this process after the call; idempotent; the search's driver calls it.
    """
    from ray.tune.execution.tune_controller import TuneController

    reuse = TuneController._maybe_reuse_cached_actor
    if hasattr(reuse, "replaced"):
        return

    def _maybe_reuse_cached_actor(self: Any, trial: Any) -> bool:
        own = self._trial_to_actor.get(trial)
        # is_actor_started: Ray created the actor (its resources are held); _started_actors: its __init__ returned
        if own is not None and self._actor_manager.is_actor_started(own) and own not in self._started_actors:
            return False
        return reuse(self, trial)

    _maybe_reuse_cached_actor.replaced = reuse  # type: ignore[attr-defined]
    TuneController._maybe_reuse_cached_actor = _maybe_reuse_cached_actor


class TrialResources:
    """``tune.with_resources(trainable, TrialResources(...))``: each trial's request, by its stamped generation."""

    def __init__(self, cpus: int, gpus: float = 0.0) -> None:
        self.bundle = {"CPU": cpus} | ({"GPU": gpus} if gpus else {})  # Ray sets CUDA_VISIBLE_DEVICES from "GPU"

    def __call__(self, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        strategy = _STRATEGIES[int(config.get(GENERATION_KEY, 0)) % len(_STRATEGIES)]
        return tune.PlacementGroupFactory([self.bundle], strategy=strategy)
