"""How trials use Ray actors: reused (TensorFlow stays imported and warm), but replaced every few trials.

TensorFlow never evicts an XLA program from its compilation cache: every trial compiles new
programs (a new ``tf.function`` per Trainer), and a reused actor keeps them all, ~10 MB a trial
(measured by ``scripts/bench_soak.py``; releasing the Trainer, ``gc``, ``malloc_trim`` and a new
eager context do not give it back). Only the process ending does. So an actor runs at most
``trials_per_actor`` trials, then Tune starts a fresh one.

Tune reuses a finished trial's actor only for a trial whose resource request is equal, and
``tune.with_resources`` accepts a callable that makes each trial's request. ``TrialResources``
hands out the same one-bundle request, alternating between two placement strategies that mean
the same for a single bundle (PACK and SPREAD), once every ``trials_per_actor x slots`` trials:
a trial of the new generation cannot take an old actor, and Tune stops the old ones it no
longer needs. Trials of one generation keep reusing each other's actors as before.
"""

from __future__ import annotations

import uuid
from typing import Any

from ray import tune

# Equivalent for a one-bundle placement group; they differ only so Tune sees two different requests.
_STRATEGIES = ("PACK", "SPREAD")

# Up to this many slots a search replaces its workers every 4 x slots trials; above it, unless --trials-per-actor says
# otherwise, a worker runs every trial it is given. Replacing a generation restarts every slot's worker at once: at
# 32 slots, 200 stand-in trials took 243 s with one such change, 105 s without, ~126 s in bare Tune, while a worker
# reused throughout grows ~10-15 MB a trial and a many-slot search spreads its trials over many workers
# (1,000 trials on 64 slots: ~16 a worker, ~+200 MB on ~1 GB).
RECYCLE_MAX_SLOTS = 8


def default_trials_per_actor(slots: int) -> int:
    """``--trials-per-actor`` when not given: 4 up to ``RECYCLE_MAX_SLOTS`` slots, else 0 (never replaced)."""
    return 4 if slots <= RECYCLE_MAX_SLOTS else 0


# Tune unpickles the trainable (and so this callable) afresh on each use, in the driver: the count
# of trials made so far lives here, found by id, and a restored driver starts counting again.
_MADE: dict[str, int] = {}


def generation(trial_index: int, trials_per_actor: int, slots: int) -> int:
    """Which generation of actors the ``trial_index``-th trial (0-based) runs in; 0 forever if never replaced."""
    if trials_per_actor <= 0:
        return 0
    return trial_index // (trials_per_actor * max(slots, 1))


class TrialResources:
    """``tune.with_resources(trainable, TrialResources(...))``: each trial's request, by its generation."""

    def __init__(self, cpus: int, trials_per_actor: int, slots: int, gpus: float = 0.0) -> None:
        self.cpus, self.trials_per_actor, self.slots = cpus, trials_per_actor, slots
        self.bundle = {"CPU": cpus} | ({"GPU": gpus} if gpus else {})  # Ray sets CUDA_VISIBLE_DEVICES from "GPU"
        self.counter = uuid.uuid4().hex

    def __call__(self, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        index = _MADE.get(self.counter, 0)
        _MADE[self.counter] = index + 1
        strategy = _STRATEGIES[generation(index, self.trials_per_actor, self.slots) % len(_STRATEGIES)]
        return tune.PlacementGroupFactory([self.bundle], strategy=strategy)
