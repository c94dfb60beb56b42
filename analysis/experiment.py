"""An experiment as tables: one row per trial, one row per reported epoch (read through Ray's ResultGrid)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tune_mlp.config import METRIC, MODE
from tune_mlp.results import BestCheckpoint, ExperimentError, best_checkpoint, load_results

HISTORY_COLUMNS = ["trial_id", "epoch", "val_accuracy", "val_loss", "train_loss", "train_accuracy", "wall_time"]


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str
    trials: pd.DataFrame  # trial_id, status, stopped_early, val_accuracy (best), epochs, training_seconds, config/*
    histories: pd.DataFrame  # HISTORY_COLUMNS
    best: BestCheckpoint


def trial_status(metrics: dict[str, Any], error: Exception | None) -> str:
    """errored / diverged / completed / stopped early (ASHA, or still running when read)."""
    if error is not None:
        return "errored"
    if metrics.get("diverged"):
        return "diverged"
    if metrics.get("epoch", 0) >= metrics.get("trial_epochs", math.inf):
        return "completed"
    return "stopped early"


def load_experiment(experiment_dir: str) -> Experiment:
    results = load_results(experiment_dir)
    if len(results) == 0:
        raise ExperimentError(f"{experiment_dir} has no trials yet")
    rows, histories = [], []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or METRIC not in frame:
            rows.append(
                {
                    "trial_id": result.path.rsplit("_", 1)[-1],
                    "status": trial_status({}, result.error),
                    "stopped_early": False,
                    METRIC: math.nan,
                    "epochs": 0,
                    "training_seconds": 0.0,
                    **{f"config/{k}": v for k, v in result.config.items()},
                }
            )
            continue
        last = frame.iloc[-1].to_dict()
        status = trial_status(last, result.error)
        best = frame[METRIC].max() if MODE == "max" else frame[METRIC].min()
        rows.append(
            {
                "trial_id": last["trial_id"],
                "status": status,
                "stopped_early": status == "stopped early",
                METRIC: best,
                "epochs": int(last["epoch"]),
                "training_seconds": float(last.get("time_total_s", frame["epoch_seconds"].sum())),
                **{f"config/{k}": v for k, v in result.config.items()},
            }
        )
        histories.append(frame.assign(wall_time=frame["timestamp"].astype(float)))
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(columns=HISTORY_COLUMNS)
    if not history.empty:  # seconds since the first trial started
        history["wall_time"] -= (history["timestamp"] - history["time_total_s"]).min()
    return Experiment(
        name=results.experiment_path.rstrip("/").rsplit("/", 1)[-1],
        path=results.experiment_path,
        trials=pd.DataFrame(rows),
        histories=history.reindex(columns=HISTORY_COLUMNS),
        best=best_checkpoint(results),
    )
