"""Reading a finished (or interrupted) experiment: the best epoch of all trials, by ``val_accuracy``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from tune_mlp.config import METRIC, MODE
from tune_mlp.errors import UserInputError


class ExperimentError(UserInputError, ValueError):
    """An experiment directory that cannot be analysed; the message says why."""


@dataclass(frozen=True)
class BestCheckpoint:
    trial_id: str
    config: dict[str, Any]  # the trial's sampled config
    metrics: dict[str, Any]  # the metrics reported with the chosen checkpoint
    path: str  # the checkpoint directory (tune_mlp checkpoint format)
    metric: str = METRIC  # what "best" was chosen by (a sweep file's metric may differ)

    @property
    def score(self) -> float:
        return float(self.metrics[self.metric])


def best_checkpoint(results: tune.ResultGrid, metric: str = METRIC, mode: str = MODE) -> BestCheckpoint:
    """The checkpoint of the single best epoch across all trials (``scope="all"``), NaN ignored.

    ``Result.checkpoint`` is a trial's *latest* checkpoint; the best epoch is among ``best_checkpoints``.
    """
    sign = 1.0 if mode == "max" else -1.0
    best: BestCheckpoint | None = None
    for result in results:
        for checkpoint, metrics in result.best_checkpoints or []:
            score = metrics.get(metric)
            if score is None or not math.isfinite(score):
                continue
            if best is None or sign * score > sign * best.score:
                trial_id = metrics.get("trial_id", "")
                best = BestCheckpoint(trial_id, dict(result.config), dict(metrics), checkpoint.path, metric)
    if best is None:
        raise ExperimentError(f"no trial of this experiment reported a finite {metric} with a checkpoint")
    return best


def load_results(experiment_dir: str | Path) -> tune.ResultGrid:
    """Open an experiment through Ray's ResultGrid; a clear error for a folder that is not one."""
    path = str(experiment_dir)
    if "://" not in path:
        local = Path(path).expanduser()
        if not local.exists():
            raise ExperimentError(f"{local} does not exist: give the experiment folder, e.g. ray_results/<name>")
        if not local.is_dir() or not list(local.glob("experiment_state-*.json")):
            raise ExperimentError(
                f"{local} is not a Ray Tune experiment (no experiment_state-*.json): give the folder that "
                "`python -m tune_mlp.search` printed, e.g. ray_results/<name>"
            )
        path = str(local.resolve())
    # ExperimentAnalysis is what Tuner.restore(...).get_results() wraps, without restoring a trainable.
    analysis = tune.ExperimentAnalysis(path, default_metric=METRIC, default_mode=MODE)
    return tune.ResultGrid(analysis)
