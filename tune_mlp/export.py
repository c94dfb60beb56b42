"""Export the best checkpoint as files anyone can use: Keras, its weights (.weights.h5), TensorFlow Lite, a model card.

    python -m tune_mlp.export ray_results/NAME --out exported/NAME
    python -m tune_mlp.export ray_results/NAME --ensemble --out exported/NAME-ensemble

The source is a search (its best epoch over all trials, as analysis picks it), a ``tune_mlp.train``
output folder or a checkpoint folder. ``model.keras`` is a plain Keras ``Sequential`` (Flatten + Dense
layers with built-in activations, softmax output) that ``keras.models.load_model`` opens without
tune_mlp; it takes images of shape (N, 28, 28) with float pixels in [0, 1] (pixels as (N, 784):
``x.reshape(-1, 28, 28)``; a Keras 3 model has one input rank). ``export.json`` records what was
exported, so predict and analysis can read the folder back. With ``--ensemble`` the model is the ensemble
chosen over the best checkpoint of each trial (``tune_mlp.deploy.members``, docs/ensemble.md): the members side
by side on one input, their softmax outputs averaged with the selection's weights, built-in layers only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp.config import METRIC, TrainConfig
from tune_mlp.deploy.keras_model import build_ensemble_model, build_keras_model, tflite_bytes
from tune_mlp.deploy.model_source import (
    EXPORT_INFO,
    KERAS_FILE,
    ModelPathError,
    ModelSource,
    load_classifier,
    resolve_model,
)

WEIGHTS_H5 = "model.weights.h5"
TFLITE_FILE = "model.tflite"
MODEL_CARD = "model_card.md"


def accuracy_and_recall(probabilities: np.ndarray, y_test: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Test accuracy, the test set's size and per-class recall of a model's probabilities."""
    predicted = probabilities.argmax(axis=1)
    recall = {name: float(np.mean(predicted[y_test == label] == label)) for label, name in enumerate(class_names)}
    return {
        "test_accuracy": float(np.mean(predicted == y_test)),
        "test_examples": len(y_test),
        "per_class_recall": recall,
    }


def score_on_test(source: ModelSource, data_dir: str | None) -> tuple[TrainConfig, list[np.ndarray], dict[str, Any]]:
    """The checkpoint's config and weights, and its test accuracy and per-class recall on the full test set."""
    from tune_mlp.data import load_splits

    classifier = load_classifier(source)
    config = classifier.config
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed)
    scores = accuracy_and_recall(classifier.probabilities(splits.x_test), splits.y_test, splits.class_names)
    return config, list(classifier.weights or []), scores


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ModelPathError(f"--out {out} is a file: give a folder")


def _write(out: Path, model: Any, info: dict[str, Any], card: str) -> None:
    """The five files of an export (one model or an ensemble alike); called once everything has been checked."""
    tflite = tflite_bytes(model)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    model.save_weights(out / WEIGHTS_H5)
    (out / TFLITE_FILE).write_bytes(tflite)
    (out / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    (out / MODEL_CARD).write_text(card)


def export_model(
    path: str | Path, out: Path, data_dir: str | None = None, picked: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write model.keras, model.weights.h5, model.tflite, model_card.md and export.json into `out` (`picked`: how
    ``--pick`` chose this checkpoint, recorded in export.json's source)."""
    source = resolve_model(path)
    if source.kind == "export":
        raise ModelPathError(f"{path} is already an export: give the experiment, training run or checkpoint")
    _check_out(out)
    config, weights, scores = score_on_test(source, data_dir)  # fails before anything is written
    info = {
        "source": {
            "kind": source.kind,
            "path": str(source.path),
            "checkpoint": str(source.model_dir),
            **({"pick": picked} if picked else {}),
        },
        "config": config.to_dict(),
        "metrics": {
            METRIC: source.metrics.get(METRIC),
            "epoch": source.metrics.get("epoch"),
            **({"trial_id": source.metrics["trial_id"]} if "trial_id" in source.metrics else {}),
            **scores,
        },
    }
    _write(out, build_keras_model(config, weights), info, model_card(info))
    return info


def export_ensemble(
    path: str | Path, out: Path, data_dir: str | None = None, size: int | None = None
) -> dict[str, Any]:
    """The ensemble chosen over a search's checkpoints (``tune_mlp.deploy.members``) as one model, same files.

    export.json's ``config`` is the heaviest member's (data set and split, which every member shares: predict and
    analysis read those); ``ensemble.members`` names each member with its weight and config.
    """
    from tune_mlp.data import CLASS_NAMES
    from tune_mlp.deploy.ensemble import accuracy, average, log_loss
    from tune_mlp.deploy.members import load_test_set, member_probabilities, select_from_search

    source = resolve_model(path)
    if source.kind != "experiment":
        raise ModelPathError(f"--ensemble: {path} is a {source.kind}, not a search: give an experiment folder")
    _check_out(out)
    ensemble = select_from_search(source.path, data_dir, size)  # validation only; fails before anything is written
    chosen = ensemble.selection.chosen
    members = [ensemble.members[m] for m in chosen]
    weights = [float(ensemble.weights[m]) for m in chosen]
    val = average(ensemble.val_probabilities[chosen], weights)
    x_test, y_test = load_test_set(ensemble.config, data_dir)  # the choice is made: scored once on the test set
    test = average(member_probabilities(members, x_test), weights)
    config = ensemble.config
    info = {
        "source": {"kind": "ensemble", "path": str(source.path), "checkpoint": None},
        "config": config.to_dict(),
        "metrics": {
            METRIC: accuracy(val, ensemble.y_val),
            "val_loss": log_loss(val, ensemble.y_val),
            "test_loss": log_loss(test, y_test),
            **accuracy_and_recall(test, y_test, CLASS_NAMES[config.dataset]),
        },
        "ensemble": {
            "selection": "greedy forward selection with replacement on validation log loss (Caruana et al. 2004)",
            "members_considered": len(ensemble.members),
            "candidates": ensemble.described,
            "picks": ensemble.selection.size,
            "parameters": int(sum(m.parameters for m in members)),
            "members": [
                {
                    "trial_id": m.trial_id,
                    "epoch": m.epoch,
                    "checkpoint": m.checkpoint,
                    "weight": w,
                    "picks": int(ensemble.selection.counts[i]),
                    "score": m.score,
                    "config": m.config.to_dict(),
                }
                for i, m, w in zip(chosen, members, weights)
            ],  # fmt: skip
        },
    }
    if len(members) == 1:  # the selection kept one checkpoint: a plain model, exactly as without --ensemble
        model = build_keras_model(members[0].config, members[0].weights)
    else:
        model = build_ensemble_model([(m.config, m.weights) for m in members], weights)
    _write(out, model, info, ensemble_card(info))
    return info


def export_pick(path: str | Path, out: Path, rule: str, value: float, data_dir: str | None = None) -> dict[str, Any]:
    """The kept checkpoint of a search that ``--pick RULE VALUE`` chooses by validation score and parameters
    (``tune_mlp.deploy.pareto``), exported as one model."""
    from tune_mlp.deploy.members import kept_checkpoints
    from tune_mlp.deploy.pareto import pick

    source = resolve_model(path)  # a search none of whose trials has a finite score fails here
    if source.kind != "experiment":
        raise ModelPathError(f"--pick: {path} is a {source.kind}, not a search: give an experiment folder")
    _check_out(out)
    record, members = kept_checkpoints(source.path)
    sizes, scores = [m.parameters for m in members], [m.score for m in members]
    chosen = members[pick(rule, value, sizes, scores, record.mode, str(source.path))]
    best = max(members, key=lambda m: m.score if record.mode == "max" else -m.score)
    picked = {
        "experiment": str(source.path), "rule": rule, "value": value, "metric": record.metric,
        "trial_id": chosen.trial_id, "epoch": chosen.epoch, "score": chosen.score, "parameters": chosen.parameters,
        "best": {"trial_id": best.trial_id, "epoch": best.epoch, "score": best.score, "parameters": best.parameters},
    }  # fmt: skip
    return export_model(chosen.checkpoint, out, data_dir, picked)


def _recall_rows(info: dict[str, Any]) -> str:
    from tune_mlp.data import CLASS_NAMES

    recall = info["metrics"]["per_class_recall"]
    return "\n".join(f"| {name} | {recall[name]:.4f} |" for name in CLASS_NAMES[info["config"]["dataset"]])


def _data_and_use(config: dict[str, Any], scored: str) -> str:
    """The model card's Data and Use it sections: the same for one model and an ensemble."""
    return f"""## Data

{config["dataset"]}: 28×28 grayscale images, light object on a dark background, float pixels in [0, 1]
(byte / 255). {config["val_fraction"]:.0%} of the training set was held out (stratified, seed {config["split_seed"]})
for validation; the test set was used only to score {scored}.

## Use it

```python
import keras
model = keras.models.load_model("{KERAS_FILE}")          # plain Keras: no tune_mlp needed
probabilities = model.predict(images)                   # images: (N, 28, 28) float32 in [0, 1]
```

Pixels stored as (N, 784) rows: `images = x.reshape(-1, 28, 28)`. `{WEIGHTS_H5}` holds the same weights
(`model.load_weights` on the same architecture); `{TFLITE_FILE}` is the TensorFlow Lite version (input
(N, 28, 28) float32, output (N, 10) probabilities). From image files:
`python -m tune_mlp.predict <this folder> IMAGE...`.
"""


def model_card(info: dict[str, Any]) -> str:
    config, metrics = info["config"], info["metrics"]
    val = metrics.get(METRIC)
    config_rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in config.items())
    hidden = f"{config['num_layers']} × {config['hidden_size']} {config['activation']}"
    return f"""# Model card: tune_mlp MLP on {config["dataset"]}

An MLP (784 → {hidden} → 10 softmax) trained by tune_mlp, exported from the {info["source"]["kind"]}
`{info["source"]["path"]}` (checkpoint `{info["source"]["checkpoint"]}`).

## Scores

| | |
|---|---|
| validation accuracy (the epoch that was exported) | {"—" if val is None else f"{val:.4f}"} |
| test accuracy ({metrics["test_examples"]:,} test images, scored at export) | {metrics["test_accuracy"]:.4f} |

Per-class recall on the test set:

| class | recall |
|---|---:|
{_recall_rows(info)}

{_data_and_use(config, "this model")}
## Configuration

| hyperparameter | value |
|---|---|
{config_rows}
"""


def plural(count: int, noun: str) -> str:
    """``1 checkpoint``, ``3 checkpoints``: a count with its noun in the right number."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def ensemble_card(info: dict[str, Any]) -> str:
    config, metrics, ensemble = info["config"], info["metrics"], info["ensemble"]
    hidden = [f"{m['config']['num_layers']} × {m['config']['hidden_size']} {m['config']['activation']}"
              for m in ensemble["members"]]  # fmt: skip
    member_rows = "\n".join(
        f"| {m['trial_id']} | {m['epoch']} | {m['weight']:.4f} | {m['picks']} | {m['score']:.4f} | {layers} | "
        f"`{m['checkpoint']}` |"
        for m, layers in zip(ensemble["members"], hidden)
    )
    count, search = len(ensemble["members"]), info["source"]["path"]
    if count == 1:  # the selection kept one checkpoint: say so, not "an ensemble of 1 MLPs"
        title = f"tune_mlp MLP on {config['dataset']}, chosen by ensemble selection"
        what = f"The softmax output of one checkpoint of the search `{search}`"
        alone = " The selection kept this checkpoint alone (weight 1)."
    else:
        title = f"tune_mlp ensemble of {count} MLPs on {config['dataset']}"
        what = f"The weighted average of the softmax outputs of {count} checkpoints of the search `{search}`"
        alone = ""
    return f"""# Model card: {title}

{what},
chosen among {ensemble["candidates"]} by
{ensemble["selection"]}: {plural(ensemble["picks"], "pick")}, weight = picks / {ensemble["picks"]}.{alone} Nothing was
retrained. {ensemble["parameters"]:,} parameters in all.

## Members

| trial | epoch | weight | picks | validation score | hidden layers | checkpoint |
|---|---:|---:|---:|---:|---|---|
{member_rows}

## Scores

| | |
|---|---|
| validation accuracy (the split the selection was made on) | {metrics[METRIC]:.4f} |
| validation log loss (what the selection minimised) | {metrics["val_loss"]:.4f} |
| test accuracy ({metrics["test_examples"]:,} test images, scored at export) | {metrics["test_accuracy"]:.4f} |
| test log loss | {metrics["test_loss"]:.4f} |

Per-class recall on the test set:

| class | recall |
|---|---:|
{_recall_rows(info)}

{_data_and_use(config, "the ensemble once it was chosen")}"""


def build_parser() -> argparse.ArgumentParser:
    from tune_mlp.cli import add_flag

    parser = argparse.ArgumentParser(prog="python -m tune_mlp.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="experiment folder, tune_mlp.train output folder or checkpoint folder")
    add_flag(parser, "out", type=Path, required=True, help="folder to write the model files into")
    add_flag(parser, "data-dir", default=None, help="folder with the data set's IDX files (for the test scores)")
    add_flag(
        parser, "ensemble", action="store_true",
        help="export the ensemble chosen over the search's checkpoints (docs/ensemble.md), not its single best",
    )  # fmt: skip
    add_flag(
        parser, "ensemble-size", type=int, default=None,
        help="with --ensemble: exactly this many picks (default: the best point of up to 50 on validation)",
    )  # fmt: skip
    add_flag(
        parser, "pick", nargs=2, metavar=("RULE", "VALUE"), default=None,
        help="export the kept checkpoint of the search with the fewest parameters whose validation score is within "
        "VALUE of the best (smallest-within 0.005) or reaches VALUE (smallest-reaching 0.9)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tune_mlp.cli import report_user_errors

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ensemble_size is not None and args.ensemble_size < 1:
        parser.error(f"argument --ensemble_size: invalid value {args.ensemble_size} (must be >= 1)")
    if args.ensemble_size is not None and not args.ensemble:
        parser.error("argument --ensemble_size: only with --ensemble")
    if args.pick is not None:
        from tune_mlp.deploy.pareto import PICK_RULES

        if args.ensemble:
            parser.error("argument --pick: not with --ensemble (an ensemble is chosen on its own)")
        if args.pick[0] not in PICK_RULES:
            parser.error(f"argument --pick: {args.pick[0]!r} is not a rule; give one of {', '.join(PICK_RULES)}")
        try:
            args.pick[1] = float(args.pick[1])
        except ValueError:
            parser.error(f"argument --pick: {args.pick[1]!r} is not a number (e.g. --pick smallest-within 0.005)")

    def run() -> int:
        if args.ensemble:
            info = export_ensemble(args.source, args.out, args.data_dir, args.ensemble_size)
            members = ", ".join(f"{m['trial_id']}@{m['epoch']} {m['weight']:.2f}" for m in info["ensemble"]["members"])
            what = f"the ensemble of {plural(len(info['ensemble']['members']), 'checkpoint')} ({members})"
        elif args.pick is not None:
            info = export_pick(args.source, args.out, *args.pick, args.data_dir)
            picked = info["source"]["pick"]
            what = (
                f"{info['source']['checkpoint']} (--pick {' '.join(map(str, args.pick))}: {picked['parameters']:,} "
                f"parameters, {picked['metric']} {picked['score']:.4f}; the best: {picked['best']['parameters']:,}, "
                f"{picked['best']['score']:.4f})"
            )
        else:
            info = export_model(args.source, args.out, args.data_dir)
            what = info["source"]["checkpoint"]
        metrics = info["metrics"]
        print(
            f"exported {what} (test_accuracy {metrics['test_accuracy']:.4f}) to {args.out}: "
            f"{KERAS_FILE}, {WEIGHTS_H5}, {TFLITE_FILE}, {MODEL_CARD}, {EXPORT_INFO}"
        )
        return 0

    return report_user_errors(run)


if __name__ == "__main__":
    sys.exit(main())
