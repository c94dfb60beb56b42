"""Evaluate a set of weights on a labelled set: what the final test score and analysis both use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tune_mlp.config import TrainConfig
from tune_mlp.mlp.model import data_loss, forward


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    predictions: np.ndarray  # predicted class per example
    probabilities: np.ndarray  # softmax output, (N, 10)


def evaluate_weights(config: TrainConfig, weights: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray) -> Evaluation:
    logits = forward([tf.constant(w, tf.float32) for w in weights], tf.constant(x, tf.float32), config.activation)
    loss = float(data_loss(logits, tf.constant(y, tf.int32), config.loss))
    probabilities = tf.nn.softmax(logits).numpy()
    predictions = probabilities.argmax(axis=1)
    return Evaluation(loss, float(np.mean(predictions == y)), predictions, probabilities)
