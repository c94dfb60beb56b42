"""Export the best checkpoint as files anyone can use: Keras, its weights (.weights.h5), TensorFlow Lite, a model card.

    python -m tune_mlp.export ray_results/NAME --out exported/NAME

The source is a search (its best epoch over all trials, as analysis picks it), a ``tune_mlp.train``
output folder or a checkpoint folder. ``model.keras`` is a plain Keras ``Sequential`` (Flatten + Dense
layers with built-in activations, softmax output) that ``keras.models.load_model`` opens without
tune_mlp; it takes images of shape (N, 28, 28) with float pixels in [0, 1] (pixels as (N, 784):
``x.reshape(-1, 28, 28)``; a Keras 3 model has one input rank). ``export.json`` records what was
exported, so predict and analysis can read the folder back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp.config import METRIC, TrainConfig
from tune_mlp.data import IMAGE_SIDE
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


def build_keras_model(config: TrainConfig, weights: Sequence[np.ndarray]) -> Any:
    """The MLP as a Keras Sequential holding `weights`: (N, 28, 28) pixels in, class probabilities out."""
    import keras

    count = len(weights) // 2
    layers = [keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="image"), keras.layers.Flatten(name="pixels")]
    for i in range(count):
        activation = config.activation if i < count - 1 else "softmax"
        layers.append(keras.layers.Dense(weights[2 * i].shape[1], activation=activation, name=f"dense_{i}"))
    model = keras.Sequential(layers, name="tune_mlp")
    for i in range(count):
        model.get_layer(f"dense_{i}").set_weights([weights[2 * i], weights[2 * i + 1]])
    return model


def tflite_bytes(model: Any) -> bytes:
    """TensorFlow Lite flatbuffer of the Keras model (float32, batch dimension left free)."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the traced signature
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def score_on_test(source: ModelSource, data_dir: str | None) -> tuple[TrainConfig, list[np.ndarray], dict[str, Any]]:
    """The checkpoint's config and weights, and its test accuracy and per-class recall on the full test set."""
    from tune_mlp.data import load_splits

    classifier = load_classifier(source)
    config = classifier.config
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed)
    predicted = classifier.probabilities(splits.x_test).argmax(axis=1)
    recall = {
        name: float(np.mean(predicted[splits.y_test == label] == label))
        for label, name in enumerate(splits.class_names)
    }
    scores = {"test_accuracy": float(np.mean(predicted == splits.y_test)), "test_examples": len(splits.y_test)}
    return config, list(classifier.weights or []), scores | {"per_class_recall": recall}


def export_model(path: str | Path, out: Path, data_dir: str | None = None) -> dict[str, Any]:
    """Write model.keras, model.weights.h5, model.tflite, model_card.md and export.json into `out`."""
    source = resolve_model(path)
    if source.kind == "export":
        raise ModelPathError(f"{path} is already an export: give the experiment, training run or checkpoint")
    if out.exists() and not out.is_dir():
        raise ModelPathError(f"--out {out} is a file: give a folder")
    config, weights, scores = score_on_test(source, data_dir)  # fails before anything is written
    model = build_keras_model(config, weights)
    tflite = tflite_bytes(model)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / KERAS_FILE)
    model.save_weights(out / WEIGHTS_H5)
    (out / TFLITE_FILE).write_bytes(tflite)
    info = {
        "source": {"kind": source.kind, "path": str(source.path), "checkpoint": str(source.model_dir)},
        "config": config.to_dict(),
        "metrics": {
            METRIC: source.metrics.get(METRIC),
            "epoch": source.metrics.get("epoch"),
            **({"trial_id": source.metrics["trial_id"]} if "trial_id" in source.metrics else {}),
            **scores,
        },
    }
    (out / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n")
    (out / MODEL_CARD).write_text(model_card(info))
    return info


def model_card(info: dict[str, Any]) -> str:
    from tune_mlp.data import CLASS_NAMES

    config, metrics = info["config"], info["metrics"]
    val = metrics.get(METRIC)
    recall_rows = "\n".join(
        f"| {name} | {metrics['per_class_recall'][name]:.4f} |" for name in CLASS_NAMES[config["dataset"]]
    )
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
{recall_rows}

## Data

{config["dataset"]}: 28×28 grayscale images, light object on a dark background, float pixels in [0, 1]
(byte / 255). {config["val_fraction"]:.0%} of the training set was held out (stratified, seed {config["split_seed"]})
for validation; the test set was used only to score this model.

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

## Configuration

| hyperparameter | value |
|---|---|
{config_rows}
"""


def build_parser() -> argparse.ArgumentParser:
    from tune_mlp.cli import add_flag

    parser = argparse.ArgumentParser(prog="python -m tune_mlp.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="experiment folder, tune_mlp.train output folder or checkpoint folder")
    add_flag(parser, "out", type=Path, required=True, help="folder to write the model files into")
    add_flag(parser, "data-dir", default=None, help="folder with the data set's IDX files (for the test scores)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tune_mlp.cli import report_user_errors

    args = build_parser().parse_args(argv)

    def run() -> int:
        info = export_model(args.source, args.out, args.data_dir)
        metrics = info["metrics"]
        print(
            f"exported {info['source']['checkpoint']} (test_accuracy {metrics['test_accuracy']:.4f}) to {args.out}: "
            f"{KERAS_FILE}, {WEIGHTS_H5}, {TFLITE_FILE}, {MODEL_CARD}, {EXPORT_INFO}"
        )
        return 0

    return report_user_errors(run)


if __name__ == "__main__":
    sys.exit(main())
