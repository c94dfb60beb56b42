"""The report's ensemble section: the single best checkpoint and the ensemble chosen over the search's checkpoints
(``tune_mlp.deploy.members``: by default the best of each trial), side by side on the test set, with the selection's
trajectory.

The ensemble is chosen on the search's validation split alone; the test set is read once the choice is made, to
score the two reported models (and, for the picture, the ensemble after each pick: reported, never chosen on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.figures import BEST_COLOR, save
from analysis.report import Section
from tune_mlp.deploy import members as kept  # called through the module: a test watches what is read, and when
from tune_mlp.deploy.ensemble import accuracy, average, log_loss, trajectory_scores
from tune_mlp.deploy.keras_model import build_ensemble_model, build_keras_model, tflite_bytes, tflite_latency
from tune_mlp.deploy.members import Ensemble, EnsembleError, member_probabilities

LATENCY_BATCHES = (1, 256)
VAL_COLOR, TEST_COLOR = "#1f77b4", "#ff7f0e"


def compare(experiment: str, data_dir: str | None, relative: Any = str) -> dict[str, Any]:
    """Single best against ensemble (``{"skipped": reason}`` when the search cannot make one): what summary.json
    records. `relative` turns a checkpoint's path into the report's spelling."""
    try:
        ensemble = kept.select_from_search(experiment, data_dir)
    except EnsembleError as error:
        return {"skipped": str(error)}
    selection, members = ensemble.selection, ensemble.members
    x_test, y_test = kept.load_test_set(ensemble.config, data_dir)  # the choice is made: only now the test set
    reached = sorted(set(selection.picks) | {ensemble.best})  # every member the trajectory or the table needs
    test = dict(zip(reached, member_probabilities([members[m] for m in reached], x_test)))
    test_all = np.stack([test.get(m, np.zeros_like(test[ensemble.best])) for m in range(len(members))])
    val_loss, val_accuracy = trajectory_scores(ensemble.val_probabilities, ensemble.y_val, selection.picks)
    test_loss, test_accuracy = trajectory_scores(test_all, y_test, selection.picks)
    best = members[ensemble.best]
    single = _model_row(ensemble, {ensemble.best: 1.0}, test_all, y_test)
    weights = {m: float(selection.weights[m]) for m in selection.chosen}
    alone = weights == {ensemble.best: 1.0}  # the selection kept the single best: one model, measured once
    return {
        "members_considered": len(members),
        "candidates": ensemble.described,
        "size": selection.size,
        "max_size": len(selection.picks),
        "models": {
            "single best": single,
            "ensemble": single if alone else _model_row(ensemble, weights, test_all, y_test),
        },
        "single_best": {"trial_id": best.trial_id, "epoch": best.epoch, "checkpoint": relative(best.checkpoint)},
        "members": [
            {
                "trial_id": members[m].trial_id,
                "epoch": members[m].epoch,
                "checkpoint": relative(members[m].checkpoint),
                "score": members[m].score,
                "picks": int(selection.counts[m]),
                "weight": weights[m],
            }
            for m in selection.chosen
        ],  # fmt: skip
        "trajectory": {
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
        },  # fmt: skip
    }


def _model_row(ensemble: Ensemble, weights: dict[int, float], test_all: np.ndarray, y_test: np.ndarray) -> dict:
    """Scores, size and TFLite latency of the model averaging `weights` (member index: weight) of the members."""
    vector = np.zeros(len(ensemble.members))
    vector[list(weights)] = list(weights.values())
    val, test = average(ensemble.val_probabilities, vector), average(test_all, vector)
    chosen = [ensemble.members[m] for m in weights]
    if len(chosen) == 1:
        model = build_keras_model(chosen[0].config, chosen[0].weights)
    else:
        model = build_ensemble_model([(m.config, m.weights) for m in chosen], list(weights.values()))
    flatbuffer = tflite_bytes(model)
    return {
        "members": len(chosen),
        "parameters": int(sum(m.parameters for m in chosen)),
        "val_accuracy": accuracy(val, ensemble.y_val),
        "val_loss": log_loss(val, ensemble.y_val),
        "test_accuracy": accuracy(test, y_test),
        "test_loss": log_loss(test, y_test),
        **{f"latency_us_batch_{b}": 1e6 * tflite_latency(flatbuffer, b) for b in LATENCY_BATCHES},
    }


def ensemble_sections(comparison: dict[str, Any], out: Path) -> list[Section]:
    """The comparison with the trajectory's picture, and the members with their weights."""
    if "skipped" in comparison:
        return [Section("Ensemble of the kept checkpoints", f"No ensemble: {comparison['skipped']}.")]
    models = comparison["models"]
    single, ensemble = models["single best"], models["ensemble"]
    gain = ensemble["test_accuracy"] - single["test_accuracy"]
    kept = (
        f"**{comparison['size']} picks of {ensemble['members']} checkpoints**"
        if ensemble["members"] > 1
        else "**the single best alone**: no mixture beat it on validation"
    )
    text = (
        f"Greedy ensemble selection with replacement (Caruana et al. 2004) over "
        f"**{comparison['candidates']}**, on the search's own validation split and its "
        f"log loss: started from the best few, at most {comparison['max_size']} picks, the trajectory's best point "
        f"kept ({kept}). Scored once on the test set: "
        f"ensemble test accuracy **{ensemble['test_accuracy']:.4f}** against **{single['test_accuracy']:.4f}** for "
        f"the single best ({gain:+.4f}), at {ensemble['parameters'] / single['parameters']:.1f}× the parameters and "
        f"{ensemble['latency_us_batch_1'] / single['latency_us_batch_1']:.1f}× the TFLite latency (batch 1, this "
        "CPU). Export it with `python -m tune_mlp.export EXPERIMENT --ensemble --out DIR`."
    )
    table = pd.DataFrame.from_dict(models, orient="index").rename_axis("model")  # one row each, typed columns
    members = pd.DataFrame(comparison["members"]).set_index("trial_id")
    picture = trajectory_plot(comparison["trajectory"], comparison["size"], single, out / "ensemble_trajectory.png")
    return [
        Section("Ensemble of the kept checkpoints", text, table, [picture]),
        Section(
            "Ensemble members",
            "Heaviest first: weight = picks / ensemble size; score = the search's metric at that epoch.",
            members,
        ),
    ]


def trajectory_plot(trajectory: dict[str, list[float]], size: int, single: dict[str, Any], path: Path) -> Path:
    """Log loss and accuracy of the ensemble against its size (picks), validation and test, the kept size marked and
    the single best's scores as dotted lines (it starts the trajectory only when it also has the lowest loss)."""
    sizes = np.arange(1, len(trajectory["val_loss"]) + 1)
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, label in ((loss_ax, "loss", "Log loss"), (acc_ax, "accuracy", "Accuracy")):
        ax.plot(sizes, trajectory[f"val_{kind}"], color=VAL_COLOR, marker=".", label="validation (chosen on)")
        ax.plot(sizes, trajectory[f"test_{kind}"], color=TEST_COLOR, marker=".", label="test (reported only)")
        ax.axhline(single[f"val_{kind}"], color=VAL_COLOR, linestyle=":", linewidth=1, label="single best, validation")
        ax.axhline(single[f"test_{kind}"], color=TEST_COLOR, linestyle=":", linewidth=1, label="single best, test")
        ax.axvline(size, color=BEST_COLOR, linestyle="--", linewidth=1, label=f"kept: {size} picks")
        ax.set_xlabel("Ensemble size (picks, with replacement)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    loss_ax.set_title("Selection trajectory: log loss")
    acc_ax.set_title("Selection trajectory: accuracy")
    loss_ax.legend(fontsize=8)
    return save(fig, path)
