"""A search's record (``search.json``, ``best.json``) and the one reader of an experiment over all its parts.

Tune cannot raise a finished experiment's ``num_samples`` (ray#42221), so ``--samples 40`` on a finished 20-trial
search runs 20 more as a Tune experiment of its own in ``EXPERIMENT/part-2/``; ``search.json`` lists the parts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from tune_mlp import storage
from tune_mlp.config import METRIC, MODE, is_better
from tune_mlp.errors import UserInputError
from tune_mlp.records import BEST_FILE, BestResult, SearchRecord
from tune_mlp.search.plan import BudgetError, format_duration
from tune_mlp.search.recovery import torn_state

PART_PREFIX = "part-"
HISTORY_COLUMNS = ["trial_id", "epoch", "val_accuracy", "val_loss", "train_loss", "train_accuracy", "wall_time"]
# What budget accounting (analysis.accounting) reads: which part, and Tune's and the loop's clocks.
TIMING_COLUMNS = ["part", "timestamp", "time_total_s", "time_this_iter_s", "epoch_seconds"]


class ExperimentError(UserInputError, ValueError):
    """An experiment directory that cannot be analysed; the message says why."""


@dataclass(frozen=True)
class Part:
    """One driver run's Tune experiment within a search."""

    root: str  # the search's folder (search.json)
    folder: str  # "." for the first part, "part-2", ... for extensions
    samples: int  # trials this part asks for (Tune's num_samples; -1: until the time budget ends)
    resume: bool  # restore this part's Tune experiment (interrupted, or finished with nothing to add)
    finished: bool = False  # the search already holds the trials asked for: only its results are read
    warm_start: list[dict[str, Any]] = field(default_factory=list)  # earlier trials: trial_id, config, reward
    histories: dict[str, dict[int, float]] = field(default_factory=dict)  # earlier trials' metric per epoch

    @property
    def path(self) -> str:
        return self.root if self.folder == "." else f"{self.root}/{self.folder}"


def plan_part(root: str, samples: int, record: SearchRecord, sampled: list[str]) -> Part:
    """Start ``root``, resume its interrupted part, or extend it to ``samples`` (over the same space as ``record``)."""
    existing = SearchRecord.load(root)
    if existing is None:
        return Part(root, ".", samples, _resumable(root))
    if _canonical(existing.parameters) != _canonical(record.parameters):
        raise UserInputError(
            f"{root} was searched over another space ({existing.space}): extend it with the same --space, "
            "or give a new --name"
        )
    parts = existing.parts or [{"folder": "."}]  # searches recorded before parts existed: one part
    last = parts[-1]
    last_path = existing.part_paths(root)[-1]
    if last.get("ended_by") is None and _resumable(last_path):
        return Part(root, last.get("folder", "."), int(last.get("samples", samples)), True)
    earlier = [result for path in existing.part_paths(root) for result in load_results(path, existing)]
    done = sum(1 for result in earlier if ran(result))  # trials_done, on the results read once
    if 0 <= samples <= done:  # nothing to add: reopen the last part, which returns its results (-1: until a budget)
        return Part(root, last.get("folder", "."), int(last.get("samples", samples)), True, finished=True)
    return Part(root, f"{PART_PREFIX}{len(parts) + 1}", samples - done if samples >= 0 else samples, False,
                warm_start=warm_points(earlier, existing.metric, existing.mode, sampled),
                histories=_histories(earlier, existing.metric))  # fmt: skip


def _resumable(path: str) -> bool:
    """Whether Tune can restore ``path``; a saved state cut short by a killed driver is refused (``torn_state``)."""
    fs, fs_path = storage.filesystem(path)  # as the Tuner restores it (tune_mlp.search.tuner)
    if not tune.Tuner.can_restore(fs_path, storage_filesystem=fs):
        return False
    torn = torn_state(path)
    if torn:
        raise UserInputError(
            f"{path} cannot be resumed: Tune's saved state {torn} is empty or cut short (its driver was killed while "
            "Tune was writing it); start the search again under a new --name (its trials stay in its trial_* folders)"
        )
    return True


def _canonical(parameters: dict[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True, default=str)


def ran(result: Any) -> bool:
    """A trial that ran: it reported an epoch or failed (one the budget ended before its first report did not)."""
    return "epoch" in (result.metrics or {}) or result.error is not None


def warm_points(results: list[Any], metric: str, mode: str, sampled: list[str]) -> list[dict[str, Any]]:
    """Each earlier trial's sampled config and the score TPE was told (its last report); NaN becomes the worst."""
    points = []
    for result in results:
        if not result.metrics or metric not in result.metrics:
            continue
        config = {key: result.config[key] for key in sampled if key in result.config}
        if len(config) != len(sampled):
            continue
        points.append({"trial_id": result.metrics.get("trial_id"), "config": config,
                       "reward": float(result.metrics[metric])})  # fmt: skip
    finite = [p["reward"] for p in points if math.isfinite(p["reward"])]
    worst = (min(finite) if mode == "max" else max(finite)) if finite else 0.0
    for point in points:  # a diverged trial is as bad as the worst one seen, not a hole TPE cannot rank
        point["reward"] = point["reward"] if math.isfinite(point["reward"]) else worst
    return points


def _histories(results: list[Any], metric: str) -> dict[str, dict[int, float]]:
    """Each earlier trial's metric per epoch (what ASHA's rungs are told)."""
    histories = {}
    for result in results:
        frame = result.metrics_dataframe
        if frame is not None and not frame.empty and metric in frame:
            scores = {int(e): float(s) for e, s in zip(frame["epoch"], frame[metric]) if math.isfinite(s)}
            histories[str(frame["trial_id"].iloc[-1])] = scores
    return histories


def record_part(record: SearchRecord, part: Part, run: dict[str, float] | None = None, **info: Any) -> SearchRecord:
    """``record`` with this part's entry added or updated with ``info``; ``run``'s times go to the part's ``runs``
    (one per driver run: ``started`` opens one, a killed run has no ``ended``)."""
    parts = [dict(p) for p in record.parts]
    entry = next((p for p in parts if p.get("folder", ".") == part.folder), None)
    if entry is None:  # ended_by None until it ends
        warm = [{"trial_id": p["trial_id"], "reward": p["reward"]} for p in part.warm_start]
        entry = {"folder": part.folder, "samples": part.samples, "warm_start": warm, "ended_by": None}
        parts.append(entry)
    entry.update(info)
    if run:
        runs = [dict(times) for times in entry.get("runs", [])]
        if "started" in run or not runs:
            runs.append({})
        runs[-1].update(run)
        entry["runs"] = runs
    return dataclasses.replace(record, parts=parts)


def finish_part(path: str, part: Part, results: tune.ResultGrid, deadline: float | None) -> None:
    """Record how the part ended: all its samples ran, the budget ended it, or (None) it was interrupted.

    Tune leaves no trial unfinished when the experiment ends by itself; Ctrl-C leaves the running ones RUNNING.
    """
    record = SearchRecord.load(path) or SearchRecord()
    done = sum(1 for result in results if ran(result))
    ended = results.num_terminated + results.num_errors == len(results)
    ended_by = None
    if ended and part.samples >= 0 and done >= part.samples:  # -1: until the budget ends
        ended_by = "samples"
    elif ended and deadline is not None:
        ended_by = "time budget"
    stopped = budget_cut([r.metrics for r in results if r.metrics], deadline) if ended_by == "time budget" else []
    earlier = sum(int(p.get("trials", 0)) for p in record.parts if p.get("folder", ".") != part.folder)
    record = dataclasses.replace(record, trials=earlier + done)
    record_part(record, part, {"ended": time.time()}, trials=done, ended_by=ended_by, budget_stopped=stopped).save(path)


def budget_cut(last_results: list[dict[str, Any]], deadline: float | None = None) -> list[str]:
    """The trials the budget cut short, from each trial's last report: stopped before their own last epoch, with
    a next epoch that would have ended after the deadline or the experiment's last report (``timestamp`` is whole
    seconds, hence the second of slack)."""
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


def write_best(results: tune.ResultGrid) -> BestResult:
    """The best epoch of the whole search (every part), written to ``best.json`` at its root (local path or URI)."""
    root = search_root(experiment_uri(results))
    record, every = load_search(root)
    last = record.parts[-1] if record.parts else {}
    try:
        best = best_result(every, record.metric, record.mode)
    except ExperimentError:
        if last.get("ended_by") != "time budget":
            raise
        raise BudgetError(
            f"the time budget ({format_duration(last['time_budget_s'])}) ended the search before any trial reported "
            "an epoch: give a longer --time-budget (start-up alone takes some seconds)"
        ) from None
    summary = {
        "search": dataclasses.asdict(record),
        "experiment": root,
        "trials": sum(1 for result in every if ran(result)),
        "errored_trials": sum(1 for result in every if result.error),
        "parts": len(record.part_paths(root)),
        "ended_by": last.get("ended_by"),
        "time_budget_s": last.get("time_budget_s"),
        "best": best.to_dict(),
    }
    storage.write_text(root, BEST_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    return best


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
    """The single best epoch of all trials, NaN ignored (from ``best_checkpoints``: ``checkpoint`` is the latest)."""
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
