"""The pure math of the model against numpy: forward pass, losses, init, L2."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tune_mlp.config import TrainConfig
from tune_mlp.mlp.model import data_loss, forward, init_weights, l2_penalty, numpy_logits
from tune_mlp.mlp.network import layer_sizes


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
def test_forward_matches_numpy(activation: str) -> None:
    config = TrainConfig(num_layers=2, hidden_size=16, activation=activation)
    weights = init_weights(layer_sizes(config), "xavier", seed=1)
    x = np.random.default_rng(0).uniform(size=(8, 784)).astype(np.float32)
    ours = forward([tf.constant(w) for w in weights], tf.constant(x), activation).numpy()
    np.testing.assert_allclose(ours, numpy_logits(weights, x, activation), rtol=1e-4, atol=1e-5)


def test_identity_activation_makes_the_mlp_one_affine_map() -> None:
    """The assignment's ``identity``: no non-linearity, so the layers collapse to x @ W + b."""
    weights = init_weights([784, 16, 16, 10], "xavier", seed=2)
    weights[1] += 0.1  # non-zero biases, so their propagation through later layers is checked too
    x = np.random.default_rng(1).uniform(size=(5, 784)).astype(np.float32)
    kernel = weights[0] @ weights[2] @ weights[4]
    bias = (weights[1] @ weights[2] + weights[3]) @ weights[4] + weights[5]
    ours = forward([tf.constant(w) for w in weights], tf.constant(x), "identity").numpy()
    np.testing.assert_allclose(ours, x @ kernel + bias, rtol=1e-4, atol=1e-4)


def test_layer_sizes_and_init_shapes() -> None:
    config = TrainConfig(num_layers=3, hidden_size=32)
    sizes = layer_sizes(config)
    assert sizes == [784, 32, 32, 32, 10]
    weights = init_weights(sizes, "xavier", seed=0)
    assert [w.shape for w in weights] == [(784, 32), (32,), (32, 32), (32,), (32, 32), (32,), (32, 10), (10,)]
    limit = np.sqrt(6 / (784 + 32))
    assert np.abs(weights[0]).max() <= limit and np.abs(weights[0]).max() > 0.9 * limit
    random = init_weights(sizes, "random", seed=0)
    assert abs(random[0].std() - 0.01) < 0.001
    assert all(np.array_equal(a, b) for a, b in zip(weights, init_weights(sizes, "xavier", seed=0)))


def test_losses_against_numpy() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=6)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected_ce = -np.mean(np.log(probs[np.arange(6), labels]))
    expected_mse = np.mean(((probs - np.eye(10)[labels]) ** 2).sum(axis=1))
    assert float(data_loss(tf.constant(logits), tf.constant(labels), "cross_entropy")) == pytest.approx(
        expected_ce, 1e-5
    )
    assert float(data_loss(tf.constant(logits), tf.constant(labels), "mse")) == pytest.approx(expected_mse, 1e-5)


def test_l2_penalty_is_half_squared_kernel_norm() -> None:
    weights = [tf.constant([[1.0, 2.0]]), tf.constant([5.0, 5.0]), tf.constant([[3.0], [0.0]]), tf.constant([7.0])]
    assert float(l2_penalty(weights)) == pytest.approx(0.5 * (1 + 4 + 9))  # biases are not decayed


def test_dropout_only_with_seed_and_scales_kept_units() -> None:
    weights = init_weights([784, 64, 10], "xavier", seed=0)
    x = tf.ones((4, 784))
    tensors = [tf.constant(w) for w in weights]
    plain = forward(tensors, x, "relu").numpy()
    assert np.array_equal(plain, forward(tensors, x, "relu", dropout=0.5).numpy())  # no seed: evaluation
    dropped = forward(tensors, x, "relu", dropout=0.5, seed=tf.constant([1, 2], tf.int64)).numpy()
    assert not np.allclose(plain, dropped)
