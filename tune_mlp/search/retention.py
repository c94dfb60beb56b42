"""Checkpoint retention without a forced experiment snapshot per few checkpoints: best N (and the latest) per trial.

``CheckpointConfig(num_to_keep=N)`` makes Tune (2.60) force an experiment-state snapshot every N checkpoints of any
trial (``sync_every_n_trial_checkpoints`` in ``tune_controller.py``; ray#30073, #31613), and a forced snapshot
writes every trial's state and pickles the searcher's history, waiting for the previous one. With a checkpoint
per epoch that is one snapshot per N epochs of each trial: at 32 slots and 1-second epochs, about ten a second.
So Tune keeps every checkpoint (``num_to_keep=None``: snapshots on its own period, ``TUNE_GLOBAL_CHECKPOINT_S``)
and this callback deletes a trial's surplus when the trial ends: a running trial still has its latest
checkpoint to resume from, and a finished one keeps its best N by the search's metric, which is what
``tune_mlp.search.results`` reads (``Result.best_checkpoints``; the deleted entries are never selected).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ray.tune import Callback

logger = logging.getLogger(__name__)


class KeepBestCheckpoints(Callback):
    """On a trial's end, delete its checkpoints outside the best ``keep`` by ``metric`` (and its latest)."""

    def __init__(self, metric: str, mode: str, keep: int = 3) -> None:
        self.metric, self.mode, self.keep = metric, mode, keep
        self._last: dict[str, float] = {}  # trial id -> the metric of its latest result
        self._saved: dict[str, list[tuple[float, Any]]] = {}  # trial id -> (score, checkpoint), in order

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._last[trial.trial_id] = result.get(self.metric, math.nan)

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        score = float(self._last.get(trial.trial_id, math.nan))
        self._saved.setdefault(trial.trial_id, []).append((score, checkpoint))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        saved = self._saved.pop(trial.trial_id, [])
        self._last.pop(trial.trial_id, None)
        sign = 1.0 if self.mode == "max" else -1.0
        ranked = sorted(
            range(len(saved)), key=lambda i: -sign * saved[i][0] if not math.isnan(saved[i][0]) else math.inf
        )
        kept = set(ranked[: self.keep]) | {len(saved) - 1}
        for index, (_, checkpoint) in enumerate(saved):
            if index in kept:
                continue
            try:
                checkpoint.filesystem.delete_dir(checkpoint.path)
            except OSError as error:  # a checkpoint already gone, a storage hiccup: keeping it is harmless
                logger.debug("could not delete %s: %s", checkpoint.path, error)
