"""The one reader of a Ray Tune experiment: its trials as tables and its single best epoch (a ``BestResult``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from tune_mlp import storage
from tune_mlp.config import METRIC, MODE, is_better
from tune_mlp.errors import UserInputError
from tune_mlp.records import BestResult, SearchRecord

HISTORY_COLUMNS = ["trial_id", "epoch", "val_accuracy", "val_loss", "train_loss", "train_accuracy", "wall_time"]
# What budget accounting (tune_mlp.search.accounting) reads: which part, and Tune's and the loop's clocks.
TIMING_COLUMNS = ["part", "timestamp", "time_total_s", "time_this_iter_s", "epoch_seconds"]


class ExperimentError(UserInputError, ValueError):
    """An experiment directory that cannot be analysed; the message says why."""


@dataclass(frozen=True)
class Experiment:
    """A search as tables: one row per trial, one per reported epoch, and its best epoch."""

    name: str
    path: str
    record: SearchRecord  # what it was asked to do (metric, mode, method, space)
    trials: pd.DataFrame  # trial_id, status, <metric> (best), epochs, training_seconds, checkpoint, config/*
    histories: pd.DataFrame  # HISTORY_COLUMNS (+ the metric)
    best: BestResult


def load_results(experiment_dir: str | Path, record: SearchRecord | None = None) -> tune.ResultGrid:
    """Open an experiment through Ray's ResultGrid; a clear error for a folder that is not one."""
    path = str(experiment_dir)
    if not storage.is_uri(path):
        local = Path(path).expanduser()
        if not local.exists():
            raise ExperimentError(f"{local} does not exist: give the experiment folder, e.g. ray_results/<name>")
        if not local.is_dir() or not list(local.glob("experiment_state-*.json")):
            raise ExperimentError(
                f"{local} is not a Ray Tune experiment (no experiment_state-*.json): give the folder that "
                "`python -m tune_mlp.search` printed, e.g. ray_results/<name>"
            )
        path = str(local.resolve())
    elif not storage.is_experiment(path):
        raise ExperimentError(
            f"{path} is not a Ray Tune experiment (no experiment_state-*.json there): give the URI that "
            "`python -m tune_mlp.search` printed, e.g. s3://bucket/ray_results/<name>"
        )
    record = record or SearchRecord.load(path) or SearchRecord()
    # ExperimentAnalysis is what Tuner.restore(...).get_results() wraps, without restoring a trainable.
    fs, fs_path = storage.filesystem(path)
    analysis = tune.ExperimentAnalysis(fs_path, default_metric=record.metric, default_mode=record.mode,
                                       storage_filesystem=fs)  # fmt: skip
    return tune.ResultGrid(analysis)


def search_root(experiment_dir: str | Path) -> str:
    """The search a Tune experiment folder belongs to: itself, or for an extension part its parent."""
    path = str(experiment_dir).rstrip("/")
    parent, _, folder = path.rpartition("/")
    if SearchRecord.load(path) is None and parent:
        record = SearchRecord.load(parent)
        if record is not None and any(part.get("folder") == folder for part in record.parts):
            return parent
    return path


def load_search(experiment_dir: str | Path) -> tuple[SearchRecord, list[Any]]:
    """The record and every trial's ``Result`` of a search, over all its parts (extensions) in order."""
    root = search_root(experiment_dir)
    record = SearchRecord.load(root) if storage.is_uri(root) or Path(root).is_dir() else None
    record = record or SearchRecord()
    every: list[Any] = []
    for index, path in enumerate(record.part_paths(root)):
        try:
            every.extend(load_results(path, record))
        except ExperimentError:
            if index == 0:
                raise
            # an extension interrupted before Tune saved any state has no trials yet
    return record, every


def best_result(results: Iterable[Any], metric: str = METRIC, mode: str = MODE) -> BestResult:
    """The checkpoint of the single best epoch across all trials, NaN ignored.

    ``Result.checkpoint`` is a trial's *latest* checkpoint; the best epoch is among ``best_checkpoints``.
    """
    best: BestResult | None = None
    for result in results:
        for checkpoint, metrics in result.best_checkpoints or []:
            score = metrics.get(metric)
            if score is None or not is_better(float(score), best.score if best else None, mode):
                continue
            best = BestResult(
                metric, mode, float(score), int(metrics.get("epoch", 0)), checkpoint_uri(checkpoint),
                dict(result.config), metrics.get("trial_id", ""),
            )  # fmt: skip
    if best is None:
        raise ExperimentError(
            f"no trial of this experiment reported a finite {metric} with a checkpoint (all failed or diverged?): "
            "look at the trials' errors with --verbose, or run a new search"
        )
    return best


def checkpoint_uri(checkpoint: Any) -> str:
    """A Ray checkpoint's folder as a local path or a URI (Ray gives ``bucket/key`` on its filesystem)."""
    return storage.to_uri(checkpoint.filesystem, checkpoint.path)


def experiment_uri(results: tune.ResultGrid) -> str:
    """Where a ResultGrid's experiment lives, as a local path or a URI."""
    return storage.to_uri(results.filesystem, results.experiment_path)


def trial_status(metrics: dict[str, Any], error: Exception | None) -> str:
    """errored / diverged / completed / stopped early (ASHA, a time budget, or still running when read)."""
    if error is not None:
        return "errored"
    if metrics.get("diverged"):
        return "diverged"
    if metrics.get("epoch", 0) >= metrics.get("trial_epochs", math.inf):
        return "completed"
    return "stopped early"


def load_experiment(experiment_dir: str | Path) -> Experiment:
    """Every trial of an experiment (finished, stopped, errored) and its single best epoch."""
    record, results = load_search(experiment_dir)
    if len(results) == 0:
        raise ExperimentError(f"{experiment_dir} has no trials yet: run the search (or --resume it) first")
    budget_stopped = {trial for part in record.parts for trial in part.get("budget_stopped", [])}
    rows, histories = [], []
    for result in results:
        rows.append(_trial_row(result, record, budget_stopped))
        frame = result.metrics_dataframe
        if frame is not None and not frame.empty and record.metric in frame:
            part = _part_of(result.path, record)
            histories.append(frame.assign(wall_time=frame["timestamp"].astype(float), part=part))
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=HISTORY_COLUMNS)
    if not history.empty:  # seconds since the first trial started
        history["wall_time"] -= (history["timestamp"] - history["time_total_s"]).min()
    columns = list(dict.fromkeys([*HISTORY_COLUMNS, record.metric, *TIMING_COLUMNS]))
    local = not storage.is_uri(str(experiment_dir))
    root = search_root(Path(experiment_dir).expanduser().resolve() if local else experiment_dir)
    try:
        best = best_result(results, record.metric, record.mode)
    except ExperimentError as error:
        raise ExperimentError(f"{root}: {error}") from None  # name the experiment: a caller may read several
    return Experiment(
        name=root.rsplit("/", 1)[-1],
        path=root,
        record=record,
        trials=pd.DataFrame(rows),
        histories=history.reindex(columns=columns),
        best=best,
    )


def _part_of(trial_path: str, record: SearchRecord) -> str:
    """The part folder ("." or "part-N") a trial's folder sits in."""
    parent = trial_path.rstrip("/").rsplit("/", 2)[-2]
    return parent if any(part.get("folder") == parent for part in record.parts) else "."


def _trial_row(result: Any, record: SearchRecord, budget_stopped: set[str] = frozenset()) -> dict[str, Any]:
    frame = result.metrics_dataframe
    # A trial the time budget ended before its first report has no config in its result.
    config = {f"config/{key}": value for key, value in (result.config or {}).items()}
    if frame is None or frame.empty or record.metric not in frame:
        trial_id = result.path.rsplit("_", 1)[-1]
        status = trial_status({}, result.error)
        return {"trial_id": trial_id, "status": status, "stopped_early": False, record.metric: math.nan,
                "epochs": 0, "training_seconds": 0.0, "checkpoint": None, **config}  # fmt: skip
    last = frame.iloc[-1].to_dict()
    status = trial_status(last, result.error)
    if status == "stopped early" and last["trial_id"] in budget_stopped:
        status = "stopped by budget"
    scores = frame[record.metric]
    best = scores.max() if record.mode == "max" else scores.min()
    checkpoints = [(c, m) for c, m in result.best_checkpoints or [] if m.get(record.metric) == best]
    return {
        "trial_id": last["trial_id"],
        "status": status,
        "stopped_early": status == "stopped early",
        record.metric: best,
        "epochs": int(last["epoch"]),
        "training_seconds": float(last.get("time_total_s", frame["epoch_seconds"].sum())),
        "checkpoint": checkpoint_uri(checkpoints[0][0]) if checkpoints else None,
        **config,
    }
