"""The search's only use of Ray Tune internals, gated on the releases it was verified on (docs/architecture.md says
why each exists and what it measured); off those releases Tune's own behaviour runs, with one note line."""

from __future__ import annotations

import sys
from typing import Any

# The releases keep_starting_workers was read against and measured on (a replaced private method of Tune's controller).
VERIFIED_RAY = ("2.60.0",)

_noted: list[str] = []  # the note is said once a process


def verified(version: str) -> bool:
    return version in VERIFIED_RAY


def keep_starting_workers() -> bool:
    """A waiting trial whose own worker is starting keeps it (Tune would kill it for a finished trial's worker); changes
    Tune's class for the whole process, idempotent. Returns whether it applies (docs/architecture.md)."""
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
