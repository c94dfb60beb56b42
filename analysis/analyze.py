"""From an experiment folder to ``summary.json``, the pictures and a report: the best epoch, scored on test.

Every "best" follows the experiment's own metric and mode (``search.json``); paths written into the
report and the summary are relative (to the experiment, or to the output folder), never the machine's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from analysis import plots_eval, plots_search
from analysis.accounting import budget_accounting
from analysis.ensemble_report import compare, ensemble_sections
from analysis.importance import hyperparameter_importance
from analysis.objective import Objective
from analysis.parallel import parallel_coordinates
from analysis.pareto_report import pareto_section, points, summarize
from analysis.report import Section, write_report
from tune_mlp import storage
from tune_mlp.data import Splits, load_splits
from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.mlp.evaluate import evaluate_weights
from tune_mlp.search.results import Experiment, load_experiment

TRIAL_TABLE_ROWS = 20


def analyze(experiment: str | Experiment, out_dir: Path, data_dir: str | None = None) -> dict[str, Any]:
    """The report on an experiment (its folder, or the ``load_experiment`` of it a caller has already read)."""
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    # First: the ensemble is chosen on the validation split before anything here reads the test set.
    ensemble = compare(experiment.path, data_dir, lambda path: relative_to(path, experiment.path))
    pareto_rows, mode = points(experiment.path, lambda path: relative_to(path, experiment.path))
    checkpoint = load_checkpoint(experiment.best.checkpoint)
    config = checkpoint.config
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed)
    test = evaluate_weights(config, checkpoint.weights, splits.x_test, splits.y_test)
    out_dir.mkdir(parents=True, exist_ok=True)

    trials = experiment.trials
    counts = trials["status"].value_counts().to_dict()
    best = dataclasses.replace(
        experiment.best,
        checkpoint=relative_to(experiment.best.checkpoint, experiment.path),
        test_accuracy=test.accuracy,
        test_loss=test.loss,
    )
    summary = {
        "experiment": experiment.name,
        "experiment_path": _path_from(out_dir, experiment.path),
        "trials": {"total": len(trials), **{status: int(n) for status, n in counts.items()}},
        "best": best.to_dict(),
        "total_training_seconds": float(trials["training_seconds"].sum()),
        "per_trial_training_seconds": dict(zip(trials["trial_id"], trials["training_seconds"].round(2))),
        "search": experiment.record.describe(),
        "budget": budget_accounting(trials, experiment.histories, experiment.record.parts),
        "ensemble": ensemble,
        "pareto": summarize(pareto_rows, mode),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _write_report(experiment, summary, splits, test.predictions, out_dir, pareto_rows)
    return summary


def relative_to(path: str, experiment_path: str) -> str:
    """A path inside the experiment as ``trial_x/checkpoint_000004``; anything else unchanged."""
    prefix = experiment_path.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _path_from(out_dir: Path, experiment_path: str) -> str:
    """The experiment as seen from the report's folder (``..`` by default); a URI stays a URI."""
    if storage.is_uri(experiment_path):
        return experiment_path
    return Path(os.path.relpath(experiment_path, out_dir.resolve())).as_posix()


def per_class_table(y_true, y_pred, class_names) -> pd.DataFrame:
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=range(len(class_names)))
    return pd.DataFrame(
        {"class": class_names, "precision": precision, "recall": recall, "f1": f1, "support": support}
    ).set_index("class")


def _write_report(
    experiment: Experiment, summary: dict[str, Any], splits: Splits, predictions, out: Path, pareto_rows: pd.DataFrame
) -> None:
    objective = Objective.of(experiment.record)
    sections = [
        _result_section(summary, objective, len(splits.y_test)),
        *ensemble_sections(summary["ensemble"], out),
        pareto_section(pareto_rows, summary["pareto"], objective, out),
        where_it_fails(splits, predictions, out),
        _search_section(experiment, objective, out),
        _budget_section(summary),
        _importance_section(experiment, objective, out),
    ]
    write_report(out, f"Search report: {experiment.name}", sections)


def _result_section(summary: dict[str, Any], objective: Objective, n_test: int) -> Section:
    best, trials = summary["best"], summary["trials"]
    counts = ", ".join(f"{n} {status}" for status, n in trials.items() if status != "total")
    return Section(
        "Result",
        f"The best of **{trials['total']} trials** ({counts}), selected by {objective.metric} ({objective.mode}), "
        f"reached {objective.label} **{best['score']:.4f}** at epoch {best['epoch']} of trial `{best['trial_id']}`. "
        f"That epoch's checkpoint, scored once on the {n_test:,} test images it never saw: "
        f"**test accuracy {best['test_accuracy']:.4f}**, test loss {best['test_loss']:.4f}.\n\n"
        f"Checkpoint (in the experiment folder): `{best['checkpoint']}`",
        pd.DataFrame({"value": best["config"]}).rename_axis("hyperparameter"),
    )


def where_it_fails(splits: Splits, predictions, out: Path) -> Section:
    """The test-set pictures of any model (a search's best or one model): confusion, per-class accuracy, samples."""
    names, y_test = splits.class_names, splits.y_test
    confusion, confusion_normalized = plots_eval.confusion_matrices(y_test, predictions, names, out)
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
            plots_eval.per_class_accuracy(y_test, predictions, names, out / "per_class_accuracy.png"),
            plots_eval.sample_predictions(splits.x_test, y_test, predictions, names, out / "sample_predictions.png"),
        ],
    )


def _search_section(experiment: Experiment, objective: Objective, out: Path) -> Section:
    trials = objective.sort_best_first(experiment.trials)
    table = trials[["trial_id", "status", objective.metric, "epochs", "training_seconds"]].head(TRIAL_TABLE_ROWS)
    return Section(
        "The search",
        f"{objective.label.capitalize()} of every trial by epoch (trials ASHA stopped early end in ×), and the "
        f"best {objective.label} found so far against wall time. Trials are listed best first.",
        table.set_index("trial_id"),
        [
            plots_search.learning_curves(
                experiment.histories, experiment.trials, out / "learning_curves.png", objective
            ),
            plots_search.best_so_far(experiment.histories, out / "best_so_far.png", objective),
        ],
    )


def _importance_section(experiment: Experiment, objective: Objective, out: Path) -> Section:
    importance = hyperparameter_importance(experiment.trials, objective.metric)
    return Section(
        "Which hyperparameters mattered",
        f"Each line is a trial, coloured by its best {objective.label}. The importance is a random "
        "forest's permutation importance over the trials (scikit-learn): with few trials, a hint, not a proof.",
        importance.to_frame() if not importance.empty else None,
        [
            parallel_coordinates(experiment.trials, out / "parallel_coordinates.png", objective),
            plots_search.importance_chart(importance, experiment.trials, out / "importance.png", objective),
        ],
    )


def _budget_section(summary: dict[str, Any]) -> Section:
    """How the search ran (method, searcher, scheduler) and where its time went (``analysis.accounting``)."""
    budget = summary["budget"]
    if budget["ended_by"] == "time budget":
        ended = (
            f"The time budget ({budget['time_budget_s']:.0f} s) ended the search after {budget['trials_run']} "
            f"trials ({budget['budget_stopped_trials']} cut short, their checkpoints kept). "
        )
    else:
        ended = f"{budget['trials_run']} trials ran. "
    text = (
        f"Search: {summary['search']}.\n\n{ended}They trained {budget['epochs_spent']} epochs in "
        f"{budget['trial_seconds']:.0f} trial-seconds; {budget['asha_stopped_share']:.0%} of them went to the "
        f"{budget['asha_stopped_trials']} trials ASHA later stopped. The {budget['slots']:.0f} trial slots spent "
        f"{budget['training_efficiency']:.0%} of their wall time in the training loop "
        f"({budget['trial_efficiency']:.0%} counting evaluation and checkpoints)."
    )
    table = pd.DataFrame({"value": {k: v for k, v in budget.items() if v is not None}}).rename_axis("budget")
    return Section("How the search ran, and where the time went", text, table)
