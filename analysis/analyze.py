"""From an experiment folder to ``summary.json``, the pictures and a report: the best epoch, scored on test."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from analysis import plots
from analysis.report import Section, write_report
from tune_mlp.checkpoint import load_checkpoint
from tune_mlp.config import METRIC
from tune_mlp.data import load_splits
from tune_mlp.evaluate import evaluate_weights
from tune_mlp.results import Experiment, load_experiment


def analyze(experiment_dir: str, out_dir: Path, data_dir: str | None = None) -> dict[str, Any]:
    experiment = load_experiment(experiment_dir)
    checkpoint = load_checkpoint(experiment.best.checkpoint)
    config = checkpoint.config
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed)
    test = evaluate_weights(config, checkpoint.weights, splits.x_test, splits.y_test)
    out_dir.mkdir(parents=True, exist_ok=True)

    trials = experiment.trials
    counts = trials["status"].value_counts().to_dict()
    best = dataclasses.replace(experiment.best, test_accuracy=test.accuracy, test_loss=test.loss)
    summary = {
        "experiment": experiment.name,
        "experiment_path": experiment.path,
        "trials": {"total": len(trials), **{status: int(n) for status, n in counts.items()}},
        "best": best.to_dict(),
        "total_training_seconds": float(trials["training_seconds"].sum()),
        "per_trial_training_seconds": dict(zip(trials["trial_id"], trials["training_seconds"].round(2))),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _write_report(experiment, summary, splits, test, out_dir)
    return summary


def per_class_table(y_true, y_pred, class_names) -> pd.DataFrame:
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=range(len(class_names)))
    return pd.DataFrame(
        {"class": class_names, "precision": precision, "recall": recall, "f1": f1, "support": support}
    ).set_index("class")


def where_it_fails(x_test, y_test, predictions, names, out_dir: Path) -> Section:
    """The test-set pictures of any model: confusion matrices, per-class accuracy, sample predictions."""
    confusion, confusion_normalized = plots.confusion_matrices(y_test, predictions, names, out_dir)
    classes = per_class_table(y_test, predictions, names)
    worst = classes["recall"].idxmin()
    return Section(
        "Where it fails",
        f"Rows are the true class, columns the prediction. The weakest class is **{worst}** "
        f"(recall {classes.loc[worst, 'recall']:.2f}).",
        classes,
        [
            confusion,
            confusion_normalized,
            plots.per_class_accuracy(y_test, predictions, names, out_dir / "per_class_accuracy.png"),
            plots.sample_predictions(x_test, y_test, predictions, names, out_dir / "sample_predictions.png"),
        ],
    )


def _write_report(experiment: Experiment, summary: dict[str, Any], splits, test, out_dir: Path) -> None:
    importance_png, importance = plots.hyperparameter_importance(experiment.trials, out_dir / "importance.png")
    best = summary["best"]
    config_table = pd.DataFrame({"value": best["config"]}).rename_axis("hyperparameter")
    trials = experiment.trials.sort_values(METRIC, ascending=False)
    trial_table = trials[["trial_id", "status", METRIC, "epochs", "training_seconds"]].head(20)
    counts = ", ".join(f"{n} {status}" for status, n in summary["trials"].items() if status != "total")
    sections = [
        Section(
            "Result",
            f"The best of **{summary['trials']['total']} trials** ({counts}) reached validation accuracy "
            f"**{best['score']:.4f}** at epoch {best['epoch']} of trial `{best['trial_id']}`. "
            f"That epoch's checkpoint, scored once on the {len(splits.y_test):,} test images it never saw: "
            f"**test accuracy {best['test_accuracy']:.4f}**, test loss {best['test_loss']:.4f}.\n\n"
            f"Checkpoint: `{best['checkpoint']}`",
            config_table,
        ),
        where_it_fails(splits.x_test, splits.y_test, test.predictions, splits.class_names, out_dir),
        Section(
            "The search",
            "Validation accuracy of every trial by epoch (trials ASHA stopped early end in ×), and the best "
            "score found so far against wall time.",
            trial_table.set_index("trial_id"),
            [
                plots.learning_curves(experiment.histories, experiment.trials, out_dir / "learning_curves.png"),
                plots.best_so_far(experiment.histories, out_dir / "best_so_far.png"),
            ],
        ),
        Section(
            "Which hyperparameters mattered",
            "Each line is a trial, coloured by its best validation accuracy. The importance is a random "
            "forest's permutation importance over the trials (scikit-learn): with few trials, a hint, not a proof.",
            importance.rename("importance").to_frame() if not importance.empty else None,
            [plots.parallel_coordinates(experiment.trials, out_dir / "parallel_coordinates.png"), importance_png],
        ),
    ]
    write_report(out_dir, f"Search report: {experiment.name}", sections)
