"""The MLP as pure functions: initial weights, forward pass, losses, accuracy.

Weights are a flat list ``[W0, b0, W1, b1, ...]`` with ``W`` of shape (in, out): the same
order as ``weights.npz`` in a checkpoint, so numpy, TensorFlow and analysis agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tune_mlp.mlp.network import NUM_CLASSES

RANDOM_INIT_STDDEV = 0.01  # the study's "random" init: small normal weights

_TF_ACTIVATIONS = {"sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu, "identity": tf.identity}


def init_weights(sizes: Sequence[int], weight_init: str, seed: int) -> list[np.ndarray]:
    """Numpy initial weights, so a seed gives the same start on every machine and backend."""
    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if weight_init == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        elif weight_init == "random":
            kernel = rng.normal(0.0, RANDOM_INIT_STDDEV, size=(fan_in, fan_out))
        else:
            raise ValueError(f"unknown weight_init {weight_init!r} (choose from random, xavier)")
        weights += [kernel.astype(np.float32), np.zeros(fan_out, np.float32)]
    return weights


def forward(
    weights: Sequence[tf.Tensor],
    x: tf.Tensor,
    activation: str,
    dropout: float | tf.Tensor = 0.0,
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Logits of the MLP; with a stateless ``seed`` pair and a ``dropout`` rate, inverted dropout after hidden layers.

    A float rate of 0 leaves dropout out; a tensor rate (float64, so ``1 - rate`` is formed as a Python float would
    be) is always applied: a compiled training step takes it as an argument and serves every rate.
    """
    act = _TF_ACTIVATIONS[activation]
    drop = seed is not None and (tf.is_tensor(dropout) or dropout > 0.0)
    h = x
    num_layers = len(weights) // 2
    for i in range(num_layers):
        h = tf.matmul(h, weights[2 * i]) + weights[2 * i + 1]
        if i < num_layers - 1:
            h = act(h)
            if drop:
                keep = tf.random.stateless_uniform(tf.shape(h), seed=seed + [0, i]) >= tf.cast(dropout, h.dtype)
                h = tf.where(keep, h / tf.cast(1.0 - dropout, h.dtype), tf.zeros_like(h))
    return h


def data_loss(logits: tf.Tensor, labels: tf.Tensor, loss: str) -> tf.Tensor:
    """Mean loss over the batch; MSE is on softmax probabilities vs one-hot, summed over classes as in the study."""
    if loss == "cross_entropy":
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    if loss == "mse":
        probs = tf.nn.softmax(logits)
        one_hot = tf.one_hot(labels, NUM_CLASSES, dtype=probs.dtype)
        return tf.reduce_mean(tf.reduce_sum(tf.square(probs - one_hot), axis=-1))
    raise ValueError(f"unknown loss {loss!r} (choose from cross_entropy, mse)")


def l2_penalty(weights: Sequence[tf.Tensor]) -> tf.Tensor:
    """Half the squared norm of the kernels (biases are not decayed), so d/dW = W."""
    return 0.5 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in weights[0::2]])


def correct_count(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    predicted = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32))


def numpy_logits(weights: Sequence[np.ndarray], x: np.ndarray, activation: str) -> np.ndarray:
    """The forward pass in plain numpy: what analysis and tests use to check a checkpoint independently."""
    acts = {
        "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
        "tanh": np.tanh,
        "relu": lambda z: np.maximum(z, 0.0),
        "identity": lambda z: z,
    }
    h = np.asarray(x, np.float64)
    num_layers = len(weights) // 2
    for i in range(num_layers):
        h = h @ np.asarray(weights[2 * i], np.float64) + np.asarray(weights[2 * i + 1], np.float64)
        if i < num_layers - 1:
            h = acts[activation](h)
    return h
