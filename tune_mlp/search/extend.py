"""Extending a search: more trials in the same experiment, TPE warm-started from every earlier result.

Ray Tune cannot raise ``num_samples`` of a finished experiment (``Tuner.restore`` keeps it, ray#42221),
so ``--samples 40`` on a finished 20-trial search runs 20 more as a second Tune experiment in the
subfolder ``EXPERIMENT/part-2/``; ``search.json`` lists the parts (``SearchRecord.parts``) and
``tune_mlp.search.results`` reads them as one search. Each part is a whole Tune experiment, so Ray's own
state stays consistent and an interrupted part resumes with ``Tuner.restore`` like any other.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ray import tune

from tune_mlp.errors import UserInputError
from tune_mlp.records import SearchRecord
from tune_mlp.search.recovery import torn_state
from tune_mlp.search.results import load_results

PART_PREFIX = "part-"


class ExtendError(UserInputError, ValueError):
    """An experiment that cannot be extended as asked."""


class ResumeError(UserInputError, ValueError):
    """An interrupted experiment that cannot be resumed."""


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
    """What this run does in ``root``: start it, resume its interrupted part, or extend it to ``samples``.

    ``record`` is what this run was asked (its space's parameters); an existing ``search.json`` must match.
    """
    existing = SearchRecord.load(root)
    if existing is None:
        return Part(root, ".", samples, _resumable(root))
    if _canonical(existing.parameters) != _canonical(record.parameters):
        raise ExtendError(
            f"{root} was searched over another space ({existing.space}): extend it with the same --space, "
            "or give a new --name"
        )
    parts = existing.parts or [{"folder": "."}]  # searches recorded before parts existed: one part
    last = parts[-1]
    last_path = existing.part_paths(root)[-1]
    if last.get("ended_by") is None and _resumable(last_path):
        return Part(root, last.get("folder", "."), int(last.get("samples", samples)), True)
    done = trials_done(existing.part_paths(root), existing)
    if 0 <= samples <= done:  # nothing to add: reopen the last part, which returns its results (-1: until a budget)
        return Part(root, last.get("folder", "."), int(last.get("samples", samples)), True, finished=True)
    earlier = [result for path in existing.part_paths(root) for result in load_results(path, existing)]
    return Part(
        root,
        f"{PART_PREFIX}{len(parts) + 1}",
        samples - done if samples >= 0 else samples,
        False,
        warm_start=warm_points(earlier, existing.metric, existing.mode, sampled),
        histories={point["trial_id"]: point["history"] for point in _histories(earlier, existing.metric)},
    )


def _resumable(path: str) -> bool:
    """Whether Tune can restore the experiment at ``path``; one whose saved state its killed driver left cut short
    is refused (``tune_mlp.search.recovery.torn_state``)."""
    if not tune.Tuner.can_restore(path):
        return False
    torn = torn_state(path)
    if torn:
        raise ResumeError(
            f"{path} cannot be resumed: Tune's saved state {torn} is empty or cut short (its driver was killed while "
            "Tune was writing it); start the search again under a new --name (its trials stay in its trial_* folders)"
        )
    return True


def _canonical(parameters: dict[str, Any]) -> str:
    return json.dumps(parameters, sort_keys=True, default=str)


def ran(result: Any) -> bool:
    """A trial that ran: it reported an epoch or failed (one the budget ended before its first report did not)."""
    return "epoch" in (result.metrics or {}) or result.error is not None


def trials_done(paths: list[str], record: SearchRecord) -> int:
    """Trials that ran (``ran``), over all parts."""
    return sum(1 for path in paths for result in load_results(path, record) if ran(result))


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


def _histories(results: list[Any], metric: str) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or metric not in frame:
            continue
        scores = {int(e): float(s) for e, s in zip(frame["epoch"], frame[metric]) if math.isfinite(s)}
        rows.append({"trial_id": str(frame["trial_id"].iloc[-1]), "history": scores})
    return rows


def part_entry(part: Part, **info: Any) -> dict[str, Any]:
    """The ``search.json`` entry of a part as it starts (``ended_by`` None until it ends)."""
    warm = [{"trial_id": p["trial_id"], "reward": p["reward"]} for p in part.warm_start]
    return {"folder": part.folder, "samples": part.samples, "warm_start": warm, "ended_by": None, **info}


def record_part(record: SearchRecord, part: Part, **info: Any) -> SearchRecord:
    """``record`` with this part's entry added (a new part) or updated with ``info`` (a resumed one)."""
    parts = [dict(p) for p in record.parts]
    index = next((i for i, p in enumerate(parts) if p.get("folder", ".") == part.folder), None)
    if index is None:
        parts.append(part_entry(part, **info))
    else:
        parts[index].update(info)
    return dataclasses.replace(record, parts=parts)


def record_run(record: SearchRecord, part: Part, **times: float) -> SearchRecord:
    """``started=`` opens a driver run of ``part`` in its ``runs`` (wall-clock times), ``ended=`` closes the last one.

    A part resumed after its driver was killed has one run per driver; a killed run has no ``ended``.
    """
    parts = [dict(p) for p in record.parts]
    entry = next(p for p in parts if p.get("folder", ".") == part.folder)
    runs = [dict(run) for run in entry.get("runs", [])]
    if "started" in times or not runs:
        runs.append({})
    runs[-1].update(times)
    entry["runs"] = runs
    return dataclasses.replace(record, parts=parts)
