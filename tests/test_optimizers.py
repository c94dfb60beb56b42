"""Our optimizers against Keras 3 on small random problems, plus XLA, state and registry checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tune_mlp.config import OPTIMIZER_NAMES
from tune_mlp.mlp import optimizers as opt

STEPS = 50
SHAPES = ((5, 3), (3,))

# Per optimizer: Keras' defaults-equivalent case and a non-default one (lr, hyperparameters).
CASES = {
    "sgd": [(1e-2, {}), (0.05, {})],
    "momentum": [(1e-2, {}), (0.01, {"momentum": 0.5})],
    "nag": [(1e-2, {}), (0.01, {"momentum": 0.5})],
    "rmsprop": [(1e-3, {}), (0.01, {"beta": 0.8, "epsilon": 1e-6})],
    "adam": [(1e-3, {}), (0.01, {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6})],
    "nadam": [(1e-3, {}), (0.01, {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-6})],
}


def keras_reference(name: str, learning_rate, hp: dict) -> keras.optimizers.Optimizer:
    momentum = hp.get("momentum", 0.9)
    beta1, beta2, epsilon = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("epsilon", 1e-7)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "nag":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, rho=hp.get("beta", 0.9), epsilon=epsilon)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=beta1, beta_2=beta2, epsilon=epsilon)
    if name == "nadam":
        return keras.optimizers.Nadam(learning_rate, beta_1=beta1, beta_2=beta2, epsilon=epsilon)
    raise AssertionError(name)


class Problem:
    """A small nonlinear least-squares loss, so gradients change from step to step."""

    def __init__(self, seed: int, dtype: tf.DType) -> None:
        rng = np.random.default_rng(seed)
        np_dtype = dtype.as_numpy_dtype
        self.dtype = dtype
        self.x = tf.constant(rng.normal(size=(16, 5)), dtype=dtype)
        self.y = tf.constant(rng.normal(size=(16, 3)), dtype=dtype)
        self.init = [rng.normal(size=shape).astype(np_dtype) for shape in SHAPES]

    def variables(self) -> list[tf.Variable]:
        return [tf.Variable(value) for value in self.init]

    def loss(self, variables: list[tf.Variable]) -> tf.Tensor:
        w, b = variables
        return tf.reduce_mean(tf.square(tf.tanh(self.x @ w + b) - self.y)) + 0.1 * tf.reduce_sum(w**4)

    def grads(self, variables: list[tf.Variable]) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = self.loss(variables)
        return tape.gradient(loss, variables)

    def step(self, optimizer, variables: list[tf.Variable]) -> None:
        optimizer.apply_gradients(zip(self.grads(variables), variables, strict=True))


def tolerances(dtype: tf.DType) -> dict:
    # float32 is bit-identical to Keras. In float64 Keras itself rounds its learning-rate
    # variable and `ops.cast(beta)` through float32 while we keep them exact, hence atol.
    return {"rtol": 1e-5, "atol": 1e-7}


def run_against_keras(name, ours, reference, problem: Problem, steps: int = STEPS) -> list[tf.Variable]:
    mine, theirs = problem.variables(), problem.variables()
    for step in range(steps):
        problem.step(ours, mine)
        problem.step(reference, theirs)
        if step % 10 == 9 or step == steps - 1:
            for a, b in zip(mine, theirs, strict=True):
                np.testing.assert_allclose(
                    a.numpy(), b.numpy(), err_msg=f"{name} step {step + 1}", **tolerances(problem.dtype)
                )
    assert int(ours.iterations.numpy()) == steps
    return mine


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", [0, 1], ids=["defaults", "custom"])
@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_matches_keras(name: str, case: int, dtype: tf.DType) -> None:
    lr, hp = CASES[name][case]
    problem = Problem(seed=10 * case + (dtype == tf.float64), dtype=dtype)
    run_against_keras(name, opt.make_optimizer(name, lr, **hp), keras_reference(name, lr, hp), problem)


def numpy_reference(name: str, lr: float, hp: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """Textbook float64 formulas, independent of Keras' operation order."""
    mu, rho = hp.get("momentum", 0.9), hp.get("beta", 0.9)
    b1, b2, eps = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("epsilon", 1e-7)
    m, v, prod = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            w = w - lr * g
        elif name in ("momentum", "nag"):
            m = mu * m - lr * g
            w = w + (m if name == "momentum" else mu * m - lr * g)
        elif name == "rmsprop":
            v = rho * v + (1 - rho) * g**2
            w = w - lr * g / np.sqrt(v + eps)
        else:
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
            if name == "adam":
                w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
            else:
                mu_t, mu_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
                prod *= mu_t
                m_hat = mu_next * m / (1 - prod * mu_next) + (1 - mu_t) * g / (1 - prod)
                w = w - lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps)
    return w


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_float64_matches_textbook_formulas(name: str) -> None:
    """In float64 the hyperparameters stay exact (no float32 detour), so the rules agree to ~1e-12."""
    lr, hp = CASES[name][1]
    rng = np.random.default_rng(11)
    w0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(8)]
    var = tf.Variable(w0)
    optimizer = opt.make_optimizer(name, lr, **hp)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), var)])
    np.testing.assert_allclose(var.numpy(), numpy_reference(name, lr, hp, w0, grads), rtol=1e-12, atol=1e-14)


def cosine(step: tf.Tensor) -> tf.Tensor:
    """Hand-written equivalent of CosineDecay(0.02, decay_steps=40)."""
    t = tf.minimum(tf.cast(step, tf.float32), 40.0)
    return 0.02 * 0.5 * (1.0 + tf.cos(math.pi * t / 40.0))


@pytest.mark.parametrize("name", ["adam", "nadam", "momentum"])
def test_schedule_matches_keras(name: str) -> None:
    problem = Problem(seed=3, dtype=tf.float32)
    schedule = keras.optimizers.schedules.CosineDecay(0.02, decay_steps=40)
    ours = opt.make_optimizer(name, cosine)
    mine = run_against_keras(name, ours, keras_reference(name, schedule, {}), problem)
    # A Keras schedule object is itself a valid callable learning rate.
    also = run_against_keras(name, opt.make_optimizer(name, schedule), keras_reference(name, schedule, {}), problem)
    for a, b in zip(mine, also, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    # After decay_steps the rate is 0, so the schedule was really evaluated at `iterations`.
    np.testing.assert_allclose(float(ours.current_learning_rate()), 0.0, atol=1e-9)


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_xla_while_loop_matches_eager(name: str) -> None:
    problem = Problem(seed=5, dtype=tf.float32)
    steps = 20
    lr = cosine if name == "adam" else 0.01

    eager_vars = problem.variables()
    eager = opt.make_optimizer(name, lr)
    for _ in range(steps):
        problem.step(eager, eager_vars)

    xla_vars = problem.variables()
    xla = opt.make_optimizer(name, lr)
    xla.build(xla_vars)
    slot_count = sum(len(s) for s in xla.slots.values())

    @tf.function(jit_compile=True)
    def train(n: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor) -> tuple[tf.Tensor]:
            problem.step(xla, xla_vars)
            return (i + 1,)

        return tf.while_loop(lambda i: i < n, body, (tf.constant(0),))[0]

    train(tf.constant(steps // 2))
    train(tf.constant(steps - steps // 2))  # second call reuses the compiled function
    assert sum(len(s) for s in xla.slots.values()) == slot_count
    assert int(xla.iterations.numpy()) == steps
    for a, b in zip(xla_vars, eager_vars, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    for key, value in eager.get_state().items():
        np.testing.assert_allclose(xla.get_state()[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_state_round_trip(name: str, tmp_path) -> None:
    problem = Problem(seed=7, dtype=tf.float32)
    hp = CASES[name][1][1]
    variables = problem.variables()
    first = opt.make_optimizer(name, 0.01, **hp)
    for _ in range(10):
        problem.step(first, variables)
    saved_vars = [v.numpy().copy() for v in variables]
    np.savez(tmp_path / "state.npz", **first.get_state())
    for _ in range(10):
        problem.step(first, variables)

    resumed_vars = [tf.Variable(value) for value in saved_vars]
    second = opt.make_optimizer(name, 0.01, **hp)
    with pytest.raises(ValueError, match="build"):
        second.set_state(first.get_state())
    second.build(resumed_vars)
    with np.load(tmp_path / "state.npz") as archive:
        second.set_state({key: archive[key] for key in archive.files})
    assert int(second.iterations.numpy()) == 10
    for _ in range(10):
        problem.step(second, resumed_vars)

    for a, b in zip(variables, resumed_vars, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    state_a, state_b = first.get_state(), second.get_state()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)


def test_state_keys() -> None:
    variables = Problem(seed=0, dtype=tf.float32).variables()
    expected = {
        "sgd": set(),
        "momentum": {"m/0", "m/1"},
        "nag": {"m/0", "m/1"},
        "rmsprop": {"v/0", "v/1"},
        "adam": {"m/0", "m/1", "v/0", "v/1"},
        "nadam": {"m/0", "m/1", "v/0", "v/1", "u_product"},
    }
    for name, keys in expected.items():
        optimizer = opt.make_optimizer(name, 0.1)
        optimizer.build(variables)
        state = optimizer.get_state()
        assert set(state) == keys | {"iterations"}
        assert state["iterations"].dtype == np.int64 and state["iterations"] == 0
        with pytest.raises(ValueError, match="missing"):
            optimizer.set_state({k: v for k, v in state.items() if k != "iterations"})


def test_lazy_build_and_slots_follow_variables() -> None:
    variables = Problem(seed=0, dtype=tf.float64).variables()
    adam = opt.Adam(0.1)
    assert not adam.built
    adam.apply_gradients(zip([tf.ones_like(v) for v in variables], variables, strict=True))
    assert adam.built and int(adam.iterations.numpy()) == 1
    for i, v in enumerate(variables):
        for name in ("m", "v"):
            assert adam.slots[name][i].shape == v.shape and adam.slots[name][i].dtype == tf.float64
    with pytest.raises(ValueError, match="not in the list"):
        adam.apply_gradients([(tf.ones(2, tf.float64), tf.Variable(tf.zeros(2, tf.float64)))])


def test_make_optimizer_passes_only_its_hyperparameters() -> None:
    kwargs = {"momentum": 0.5, "beta": 0.8, "beta1": 0.7, "beta2": 0.99, "epsilon": 1e-6}
    for name, cls in opt.OPTIMIZERS.items():
        optimizer = opt.make_optimizer(name, 0.1, **kwargs)
        assert type(optimizer) is cls
        assert optimizer.learning_rate is None  # a constant rate: a hyperparameter variable, like the others
        assert {key: float(value) for key, value in optimizer.hyper.items()} == {
            "learning_rate": 0.1, **{key: kwargs[key] for key in cls.hyperparameters}
        }
    scheduled = opt.make_optimizer("sgd", cosine)
    assert scheduled.learning_rate is cosine and "learning_rate" not in scheduled.hyper


def test_unknown_name() -> None:
    with pytest.raises(ValueError) as error:
        opt.make_optimizer("foo", 0.1)
    message = str(error.value)
    assert "'foo'" in message
    for name in OPTIMIZER_NAMES:
        assert name in message
    assert tuple(opt.OPTIMIZERS) == OPTIMIZER_NAMES
