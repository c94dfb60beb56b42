"""Report on one model (not a search): a ``tune_mlp.train`` output, a checkpoint or an export, scored on a test set.

    python -m analysis runs/train-NAME [--dataset mnist] [--out DIR]

The same test evaluation and pictures as a search's report (confusion matrices, per-class accuracy,
sample predictions), without the search's plots. ``--dataset`` scores on another data set than the
one the model was trained on (the class names are then that data set's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.analyze import where_it_fails
from analysis.report import Section, write_report
from tune_mlp.data import load_splits
from tune_mlp.deploy.model_source import Classifier, load_classifier, resolve_model
from tune_mlp.mlp.evaluate import Evaluation, evaluate_weights


def analyze_model(path: str | Path, out_dir: Path, data_dir: str | None = None, dataset: str | None = None) -> dict:
    source = resolve_model(path)
    classifier = load_classifier(source)
    config = classifier.config
    dataset = dataset or config.dataset
    splits = load_splits(dataset, data_dir, config.val_fraction, config.split_seed)
    test = evaluate(classifier, splits.x_test, splits.y_test)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "model": {"kind": source.kind, "path": str(source.path), "checkpoint": str(source.model_dir)},
        "trained_on": config.dataset,
        "dataset": dataset,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "known_metrics": source.metrics,
        "config": config.to_dict(),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    result = Section(
        "Result",
        f"The {source.kind} `{source.path}` ({config.dataset} model), scored once on the {len(splits.y_test):,} "
        f"{dataset} test images: **test accuracy {test.accuracy:.4f}**, test loss {test.loss:.4f}.\n\n"
        f"Checkpoint: `{source.model_dir}`",
        pd.DataFrame({"value": config.to_dict()}).rename_axis("hyperparameter"),
    )
    failures = where_it_fails(splits, test.predictions, out_dir)
    write_report(out_dir, f"Model report: {source.path.name} on {dataset}", [result, failures])
    return summary


def evaluate(classifier: Classifier, x: np.ndarray, y: np.ndarray) -> Evaluation:
    """A checkpoint as training scored it (TensorFlow, float32); an export through its Keras model."""
    config = classifier.config
    if classifier.weights is not None:
        return evaluate_weights(config, classifier.weights, x, y)
    probabilities = classifier.probabilities(x)
    predictions = probabilities.argmax(axis=1)
    if config.loss == "mse":  # the loss it was trained with, as tune_mlp.mlp.model.data_loss defines it
        loss = float(np.mean(np.sum((probabilities - np.eye(probabilities.shape[1])[y]) ** 2, axis=1)))
    else:
        loss = float(-np.mean(np.log(np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1.0))))
    return Evaluation(loss, float(np.mean(predictions == y)), predictions, probabilities)
