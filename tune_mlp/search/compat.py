"""The search's only use of Ray Tune internals, gated on the releases it was verified on.

Everything else in ``tune_mlp.search`` rents Ray through its public API. This one has no public route and a
measured reason to exist (docs/architecture.md lists it); on a release it was not verified on, it falls back to
Tune's own behaviour with one note line, never an error.

- ``keep_starting_workers``: Tune hands a finished trial's worker to a waiting trial and kills the worker that trial
  had started. 200 one-second stand-in trials on 32 slots of 2 cores: 112 s with Tune's rule, 86 s with this one
  (3.09x and 2.38x the slept floor; docs/benchmarks.md, Scale run 15).
"""

from __future__ import annotations

import sys
from typing import Any

# The releases keep_starting_workers was read against and measured on (a replaced private method of Tune's controller).
VERIFIED_RAY = ("2.60.0",)


_noted: list[str] = []  # the note is said once a process


def verified(version: str) -> bool:
    return version in VERIFIED_RAY


def keep_starting_workers() -> bool:
    """Tune reuses a finished trial's worker for a waiting trial only if that trial's own worker is not starting.

    Ray 2.60's ``TuneController._maybe_reuse_cached_actor`` gives a cached worker to a waiting trial and removes the
    worker requested for it. That is right while the request waits for resources (ray#36020: a cluster that has yet
    to scale up), but Tune also does it once the request has its CPU and the worker process is importing: when
    workers start slower than trials finish, every finished trial kills a starting worker and the new trial starts
    another (only 20 of 32 slots ever ran a trial). With this the trial waits for its own worker, and the cached one
    goes to the next new trial. Changes Tune's class for the whole process; idempotent. Returns whether it applies.
    """
    import ray
    from ray.tune.execution.tune_controller import TuneController

    if not verified(ray.__version__):
        if not _noted:
            print(f"note: ray {ray.__version__}: Tune's own worker reuse is used (tune_mlp's faster rule is verified "
                  f"on ray {', '.join(VERIFIED_RAY)} only)", file=sys.stderr)  # fmt: skip
            _noted.append(ray.__version__)
        return False
    reuse = TuneController._maybe_reuse_cached_actor
    if hasattr(reuse, "replaced"):
        return True

    def _maybe_reuse_cached_actor(self: Any, trial: Any) -> bool:
        own = self._trial_to_actor.get(trial)
        # is_actor_started: Ray created the actor (its resources are held); _started_actors: its __init__ returned
        if own is not None and self._actor_manager.is_actor_started(own) and own not in self._started_actors:
            return False
        return reuse(self, trial)

    _maybe_reuse_cached_actor.replaced = reuse  # type: ignore[attr-defined]
    TuneController._maybe_reuse_cached_actor = _maybe_reuse_cached_actor
    return True

