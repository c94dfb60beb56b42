"""The report's accuracy-against-size section: every kept checkpoint as a point of validation score against parameters
and TensorFlow Lite latency per image (batch 1 and 256, this CPU), the Pareto front marked, and what the best costs
against the smallest checkpoint within ``TOLERANCE`` of it (``python -m tune_mlp.export --pick smallest-within``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from analysis.figures import BEST_COLOR, save
from analysis.objective import Objective
from analysis.report import Section
from tune_mlp.deploy.keras_model import build_keras_model, tflite_bytes, tflite_latency
from tune_mlp.deploy.members import Member, kept_checkpoints
from tune_mlp.deploy.pareto import pareto_front, smallest_within
from tune_mlp.mlp.network import layer_sizes

TOLERANCE = 0.005  # "within half a point of the best": the question, and the export's example
COSTS = {"parameters": "Parameters", "latency_us_batch_1": "µs per image, batch 1", "latency_us_batch_256":
         "µs per image, batch 256"}  # fmt: skip
SMALL_COLOR, POINT_COLOR, FRONT_COLOR = "#2ca02c", "#9e9e9e", "#1f77b4"


def latencies(members: list[Member]) -> list[tuple[float, float]]:
    """(batch 1, batch 256) µs per image of each member. Measured once per architecture: latency depends on the
    layer sizes and activation, not on the weights' values."""
    measured: dict[tuple, tuple[float, float]] = {}
    for member in members:
        key = (tuple(layer_sizes(member.config)), member.config.activation)
        if key not in measured:
            flatbuffer = tflite_bytes(build_keras_model(member.config, member.weights))
            measured[key] = (1e6 * tflite_latency(flatbuffer, 1), 1e6 * tflite_latency(flatbuffer, 256))
    return [measured[(tuple(layer_sizes(m.config)), m.config.activation)] for m in members]


def points(experiment: str, relative: Any = str) -> tuple[pd.DataFrame, str]:
    """One row per kept checkpoint (trial, epoch, score, parameters, latencies, on_front per cost), and the mode."""
    record, members = kept_checkpoints(experiment)
    rows = pd.DataFrame(
        {
            "trial_id": [m.trial_id for m in members],
            "epoch": [m.epoch for m in members],
            "checkpoint": [relative(m.checkpoint) for m in members],
            "score": [m.score for m in members],
            "parameters": [m.parameters for m in members],
        }
    )
    rows[["latency_us_batch_1", "latency_us_batch_256"]] = np.array(latencies(members)).reshape(-1, 2)
    for cost in COSTS:
        rows[f"front_{cost}"] = pareto_front(rows[cost], rows["score"], record.mode)
    return rows, record.mode


def summarize(rows: pd.DataFrame, mode: str) -> dict[str, Any]:
    """The best checkpoint and the smallest within TOLERANCE of it (by parameters), with what one costs against the
    other: what summary.json records."""
    best = int(rows["score"].idxmax() if mode == "max" else rows["score"].idxmin())
    small = smallest_within(rows["parameters"], rows["score"], TOLERANCE, mode)
    fields = ["trial_id", "epoch", "checkpoint", "score", "parameters", "latency_us_batch_1", "latency_us_batch_256"]

    def row(index: int) -> dict[str, Any]:  # plain Python values, for JSON
        return {key: getattr(value, "item", lambda v=value: v)() for key, value in rows.loc[index, fields].items()}

    return {
        "tolerance": TOLERANCE,
        "checkpoints": len(rows),
        "best": row(best),
        "smallest_within": row(small),
        "front_by_parameters": int(rows["front_parameters"].sum()),
    }


def pareto_section(rows: pd.DataFrame, summary: dict[str, Any], objective: Objective, out: Path) -> Section:
    best, small = summary["best"], summary["smallest_within"]
    if best["checkpoint"] == small["checkpoint"]:
        verdict = f"no checkpoint within {TOLERANCE} of it is smaller: the best is also the cheapest that good"
    else:
        verdict = (
            f"the smallest within {TOLERANCE} of it, trial `{small['trial_id']}` epoch {small['epoch']} "
            f"({objective.label} {small['score']:.4f}), has {small['parameters']:,} parameters and takes "
            f"{small['latency_us_batch_1']:.1f} µs: the best costs **{best['parameters'] / small['parameters']:.1f}× "
            f"the parameters and {best['latency_us_batch_1'] / small['latency_us_batch_1']:.1f}× the latency** for "
            f"{abs(best['score'] - small['score']):.4f} more"
        )
    text = (
        f"Every one of the {summary['checkpoints']} kept checkpoints, {objective.label} (as its trial reported it) "
        "against its size and its TensorFlow Lite latency per image on this CPU (one thread); the "
        f"Pareto front (no other checkpoint is both cheaper and better) is joined. The best, trial "
        f"`{best['trial_id']}` epoch {best['epoch']} ({objective.label} {best['score']:.4f}), has "
        f"{best['parameters']:,} parameters and takes {best['latency_us_batch_1']:.1f} µs per image; {verdict}. "
        f"Export that one with `python -m tune_mlp.export EXPERIMENT --pick smallest-within {TOLERANCE} --out DIR`."
    )
    front = rows[rows["front_parameters"]].sort_values("parameters")
    table = front[["trial_id", "epoch", "score", *COSTS]].set_index("trial_id")
    return Section("Accuracy against size and speed", text, table, [pareto_plot(rows, summary, objective, out)])


def pareto_plot(rows: pd.DataFrame, summary: dict[str, Any], objective: Objective, out: Path) -> Path:
    fig, axes = plt.subplots(1, len(COSTS), figsize=(15, 4.2), sharey=True)
    best, small = summary["best"], summary["smallest_within"]
    for ax, (cost, label) in zip(axes, COSTS.items()):
        ax.scatter(rows[cost], rows["score"], color=POINT_COLOR, s=18, label="kept checkpoint")
        front = rows[rows[f"front_{cost}"]].sort_values(cost)
        ax.step(front[cost], front["score"], where="post", color=FRONT_COLOR, linewidth=1.2)
        ax.scatter(front[cost], front["score"], color=FRONT_COLOR, s=24, label="Pareto front")
        ax.scatter([best[cost]], [best["score"]], marker="*", s=220, color=BEST_COLOR, label="best", zorder=3)
        ax.scatter([small[cost]], [small["score"]], marker="D", s=70, facecolors="none", edgecolors=SMALL_COLOR,
                   linewidths=2, label=f"smallest within {TOLERANCE}", zorder=4)  # fmt: skip
        ax.set_xscale("log")
        # numbers at 2, 3 and 5 × 10^k only: a log axis over less than a decade would label every tick, overlapping
        ax.xaxis.set_major_formatter(FuncFormatter(_short))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: _short(v) if f"{v:.0e}"[0] in "235" else ""))
        ax.set_xlabel(label + " (log)")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(objective.label.capitalize() + " (validation)")
    low = rows["score"].quantile(0.1) if objective.mode == "max" else rows["score"].min()
    high = rows["score"].max() if objective.mode == "max" else rows["score"].quantile(0.9)
    pad = max(0.005, 0.05 * (high - low))
    axes[0].set_ylim(low - pad, high + pad)  # poor early epochs would squash the front: the worst tenth is cut
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Accuracy against size and speed: every kept checkpoint")
    return save(fig, out / "pareto.png")


def _short(value: float, _: object = None) -> str:
    """3 k, 1.2 M, 20: a tick label."""
    for scale, suffix in ((1e6, " M"), (1e3, " k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"
