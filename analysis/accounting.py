"""Where a search's time went, from its per-epoch reports: pure pandas, shared by analysis and the benchmarks.

Clocks, per reported epoch: ``epoch_seconds`` is the compiled training loop, ``time_this_iter_s``
is Tune's view of the whole epoch (training, evaluation, checkpoint, report), ``timestamp`` and
``time_total_s`` place it in wall time. A search may have several parts (an extension runs later
as its own Tune experiment, see ``tune_mlp.search.results``): wall time is counted per part, so the idle
time between a search and its extension is not charged to it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def trial_intervals(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: part, start and end in wall time (seconds since the epoch)."""
    frame = rows.assign(part=rows["part"] if "part" in rows else ".")
    frame = frame.assign(start=frame["timestamp"] - frame["time_total_s"])
    return frame.groupby("trial_id").agg(part=("part", "first"), start=("start", "min"), end=("timestamp", "max"))


def busiest_overlap(intervals: pd.DataFrame) -> int:
    """The most trials that ran at once (the slots a search used, when its record does not say)."""
    events = sorted([(t, 1) for t in intervals["start"]] + [(t, -1) for t in intervals["end"]])
    running = peak = 0
    for _, step in events:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return max(peak, 1)


def utilisation(rows: pd.DataFrame, slots: int | dict[str, int] | None = None) -> dict[str, float]:
    """Trials, epochs, and how much of the slots' wall time (per part) went into training and into trials.

    ``training_efficiency`` = sum of ``epoch_seconds`` / sum over parts of (wall seconds x slots);
    ``slots`` per part (a dict), one number for all, or None to take the busiest overlap of each part.
    """
    intervals = trial_intervals(rows)
    wall = slot_seconds = 0.0
    used: dict[str, int] = {}
    for part, group in intervals.groupby("part"):
        part_wall = float(group["end"].max() - group["start"].min())
        n = slots.get(part) if isinstance(slots, dict) else slots
        used[str(part)] = int(n or busiest_overlap(group))
        wall += part_wall
        slot_seconds += part_wall * used[str(part)]
    training, trial = float(rows["epoch_seconds"].sum()), float(rows["time_this_iter_s"].sum())
    return {
        "trials": float(rows["trial_id"].nunique()),
        "epochs": float(len(rows)),
        "wall_seconds": wall,
        "training_seconds": training,
        "trial_seconds": trial,
        "slots": float(max(used.values(), default=1)),
        "training_efficiency": training / slot_seconds if slot_seconds else 0.0,
        "trial_efficiency": trial / slot_seconds if slot_seconds else 0.0,
    }


def budget_accounting(trials: pd.DataFrame, histories: pd.DataFrame, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """What the search spent: trials run, epochs, trial-seconds and the share that went to trials ASHA stopped.

    ``trials`` has one row per trial (trial_id, status); ``histories`` one per reported epoch with the
    clocks above; ``parts`` is ``SearchRecord.parts`` (slots, time budget, how each part ended).
    """
    ran = histories.dropna(subset=["time_this_iter_s"])
    seconds = ran.groupby("trial_id")["time_this_iter_s"].sum()
    status = trials.set_index("trial_id")["status"]

    def spent_on(state: str) -> float:
        return float(seconds[seconds.index.isin(status[status == state].index)].sum())

    total = float(seconds.sum())
    slots = {p.get("folder", "."): p["slots"] for p in parts if p.get("slots")}
    last = parts[-1] if parts else {}
    used = utilisation(ran, slots or None)
    return {
        "trials_run": int(len(seconds)),
        "epochs_spent": int(len(ran)),
        "trial_seconds": total,
        "asha_stopped_trials": int((status == "stopped early").sum()),
        "asha_stopped_seconds": spent_on("stopped early"),
        "asha_stopped_share": spent_on("stopped early") / total if total else 0.0,
        "budget_stopped_trials": int((status == "stopped by budget").sum()),
        "time_budget_s": last.get("time_budget_s"),
        "ended_by": last.get("ended_by"),
        "parts": max(len(parts), 1),
        "slots": used["slots"],
        "training_efficiency": used["training_efficiency"],  # training seconds / (wall x slots), per part
        "trial_efficiency": used["trial_efficiency"],
    }
