"""Checkpoints as plain Keras models (built-in layers only) and their TensorFlow Lite form, for export and analysis.

One MLP is a ``Sequential`` (Flatten + Dense layers, softmax out). An ensemble is a functional model: the members
side by side on one input, each softmax output scaled by its weight (``Rescaling``) and summed (``Add``), so
``keras.models.load_model`` opens it without tune_mlp and its output is exactly the weighted average.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tune_mlp.config import TrainConfig
from tune_mlp.data import IMAGE_SIDE


def _dense_stack(config: TrainConfig, weights: Sequence[np.ndarray], prefix: str = "") -> list[Any]:
    import keras

    count = len(weights) // 2
    activations = [config.activation] * (count - 1) + ["softmax"]
    return [
        keras.layers.Dense(weights[2 * i].shape[1], activation=activations[i], name=f"{prefix}dense_{i}")
        for i in range(count)
    ]


def _set_weights(model: Any, weights: Sequence[np.ndarray], prefix: str = "") -> None:
    for i in range(len(weights) // 2):
        model.get_layer(f"{prefix}dense_{i}").set_weights([weights[2 * i], weights[2 * i + 1]])


def build_keras_model(config: TrainConfig, weights: Sequence[np.ndarray]) -> Any:
    """The MLP as a Keras Sequential holding `weights`: (N, 28, 28) pixels in, class probabilities out."""
    import keras

    layers = [keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="image"), keras.layers.Flatten(name="pixels")]
    model = keras.Sequential(layers + _dense_stack(config, weights), name="tune_mlp")
    _set_weights(model, weights)
    return model


def build_ensemble_model(members: Sequence[tuple[TrainConfig, Sequence[np.ndarray]]], weights: Sequence[float]) -> Any:
    """Members (config, weights) side by side on one (N, 28, 28) input; out: the `weights`-weighted average of their
    softmax outputs. Each member's layers are named ``m{index}_dense_{layer}``."""
    import keras

    image = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE), name="image")
    pixels = keras.layers.Flatten(name="pixels")(image)
    scaled = []
    for m, ((config, arrays), weight) in enumerate(zip(members, weights, strict=True)):
        h = pixels
        for layer in _dense_stack(config, arrays, prefix=f"m{m}_"):
            h = layer(h)
        scaled.append(keras.layers.Rescaling(float(weight), name=f"m{m}_weight")(h))
    out = keras.layers.Add(name="average")(scaled) if len(scaled) > 1 else scaled[0]
    model = keras.Model(image, out, name="tune_mlp_ensemble")
    for m, (_, arrays) in enumerate(members):
        _set_weights(model, arrays, prefix=f"m{m}_")
    return model


def parameter_count(weights: Sequence[np.ndarray]) -> int:
    return int(sum(np.asarray(w).size for w in weights))


def tflite_bytes(model: Any) -> bytes:
    """TensorFlow Lite flatbuffer of the Keras model (float32, batch dimension left free)."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the traced signature
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def tflite_predict(flatbuffer: bytes, images: np.ndarray) -> np.ndarray:
    """The TensorFlow Lite model's output for (N, 28, 28) float images, in one batch."""
    interpreter = _interpreter(flatbuffer, len(images))
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.asarray(images, np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()


def tflite_latency(flatbuffer: bytes, batch: int, repeats: int = 20) -> float:
    """Seconds per image of the TensorFlow Lite model on this CPU at this batch size: the median of `repeats` runs,
    after one warm-up (the first run allocates)."""
    interpreter = _interpreter(flatbuffer, batch)
    images = np.random.default_rng(0).uniform(0, 1, (batch, IMAGE_SIDE, IMAGE_SIDE)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) / batch


def _interpreter(flatbuffer: bytes, batch: int) -> Any:
    import tensorflow as tf

    with warnings.catch_warnings():  # TF 2.21 points at ai_edge_litert, which is not a dependency of ours
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=1)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [batch, IMAGE_SIDE, IMAGE_SIDE])
    interpreter.allocate_tensors()
    return interpreter
