"""The six optimizers, written out as update rules on `tf.Variable`s.

The math lives in pure functions (tensors in, tensors out, no assignment) so each
rule reads like its textbook formula and can be tested on its own; the classes only
own the slot variables and assign the results. Every rule mirrors the operation
order of its Keras 3 counterpart: sgd = `SGD()`, momentum = `SGD(momentum)`,
nag = `SGD(momentum, nesterov=True)`, rmsprop = `RMSprop(rho=beta)`,
adam = `Adam(beta_1, beta_2)`, nadam = `Nadam(beta_1, beta_2)`. In float32 the
trajectories are bit-identical to Keras; in float64 we keep the learning rate and
hyperparameters exact, where Keras rounds them through float32 (its learning-rate
variable is floatx and `ops.cast(0.999, "float64")` goes via float32), so the two
differ there by ~1e-7 relative.

`apply_gradients` is XLA-compilable and creates no variables once `build` has run,
so the training loop can `build` eagerly and then step inside
`tf.function(jit_compile=True)` / `tf.while_loop`. The hyperparameters (and a constant
learning rate) are float64 variables, not Python constants: a compiled step that takes an
optimizer's `variables()` as an argument and steps `Optimizer.on(...)` over them serves
every optimizer of that kind and shapes, whatever its values (TensorFlow never frees a
compiled program, so a program per value would grow a long-lived process without bound).
Casting the float64 value to the variable's dtype rounds it exactly as a Python float
constant would, so the trajectories are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import tensorflow as tf

from tune_mlp.config import OPTIMIZER_NAMES

# A constant step size, or a schedule evaluated at the optimizer's `iterations`
# (the number of updates already applied, int64), like a Keras LearningRateSchedule.
LearningRate = float | Callable[[tf.Tensor], tf.Tensor]
Scalar = float | tf.Tensor

# Nadam's momentum-schedule decay (Dozat 2015), hard-coded in Keras as well.
NADAM_MOMENTUM_DECAY = 0.96


def _cast(value: Scalar, dtype: tf.DType) -> tf.Tensor:
    """To `dtype` without a detour: tf.cast(0.9, float64) would round through float32 first."""
    if isinstance(value, (int, float)):
        return tf.constant(value, dtype=dtype)
    return tf.cast(value, dtype)


# ----------------------------------------------------------------------------
# Update rules. `step` is the 1-based number of the update being made (Keras'
# `iterations + 1`); everything is computed in the variable's dtype.
# ----------------------------------------------------------------------------


def sgd_update(var: tf.Tensor, grad: tf.Tensor, lr: Scalar) -> tf.Tensor:
    """var - lr * g."""
    dtype = var.dtype
    return var - _cast(grad, dtype) * _cast(lr, dtype)


def momentum_update(
    var: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, lr: Scalar, momentum: Scalar
) -> tuple[tf.Tensor, tf.Tensor]:
    """Heavy ball, Keras form: the velocity m already carries the -lr factor."""
    dtype = var.dtype
    grad, lr, momentum = _cast(grad, dtype), _cast(lr, dtype), _cast(momentum, dtype)
    m = m * momentum - grad * lr
    return var + m, m


def nag_update(
    var: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, lr: Scalar, momentum: Scalar
) -> tuple[tf.Tensor, tf.Tensor]:
    """Nesterov as Keras reformulates it: the heavy-ball velocity, then a step along m' * mu - lr * g."""
    _, m = momentum_update(var, grad, m, lr, momentum)
    dtype = var.dtype
    return var + (m * _cast(momentum, dtype) - _cast(grad, dtype) * _cast(lr, dtype)), m


def rmsprop_update(
    var: tf.Tensor, grad: tf.Tensor, v: tf.Tensor, lr: Scalar, beta: Scalar, epsilon: Scalar
) -> tuple[tf.Tensor, tf.Tensor]:
    """v = beta v + (1 - beta) g^2; var -= lr g / sqrt(v + eps) (Keras puts eps inside the sqrt)."""
    dtype = var.dtype
    grad, lr = _cast(grad, dtype), _cast(lr, dtype)
    v = _cast(beta, dtype) * v + _cast(1.0 - beta, dtype) * tf.square(grad)
    return var - (lr * grad) / tf.sqrt(v + _cast(epsilon, dtype)), v


class Moments(NamedTuple):
    """Adam's and Nadam's decay rates and denominator guard."""

    beta1: Scalar
    beta2: Scalar
    epsilon: Scalar


def adam_update(var: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor, lr: Scalar, step: tf.Tensor,
                hp: Moments) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:  # fmt: skip
    """Adam with the bias correction folded into the step size and eps outside the sqrt (Keras)."""
    beta1, beta2, epsilon = hp
    dtype = var.dtype
    grad, lr, t = _cast(grad, dtype), _cast(lr, dtype), _cast(step, dtype)
    beta1_power = tf.pow(_cast(beta1, dtype), t)
    beta2_power = tf.pow(_cast(beta2, dtype), t)
    alpha = lr * tf.sqrt(1 - beta2_power) / (1 - beta1_power)
    m = m + (grad - m) * _cast(1.0 - beta1, dtype)
    v = v + (tf.square(grad) - v) * _cast(1.0 - beta2, dtype)
    return var - (m * alpha) / (tf.sqrt(v) + _cast(epsilon, dtype)), m, v


def nadam_momentum(step: tf.Tensor, beta1: Scalar, dtype: tf.DType) -> tf.Tensor:
    """mu_t = beta1 (1 - 0.5 * 0.96^t): Dozat's warming-up momentum schedule."""
    decay = _cast(NADAM_MOMENTUM_DECAY, dtype)
    return _cast(beta1, dtype) * (1.0 - 0.5 * tf.pow(decay, _cast(step, dtype)))


def nadam_u_product_update(u_product: tf.Tensor, step: tf.Tensor, beta1: Scalar) -> tf.Tensor:
    """prod_{i<=t} mu_i, advanced once per step before the variables (Keras' operation order)."""
    dtype = u_product.dtype
    decay = _cast(NADAM_MOMENTUM_DECAY, dtype)
    return (u_product * _cast(beta1, dtype)) * (1.0 - 0.5 * tf.pow(decay, _cast(step, dtype)))


def nadam_update(var: tf.Tensor, grad: tf.Tensor, m: tf.Tensor, v: tf.Tensor, lr: Scalar, step: tf.Tensor,
                 hp: Moments, u_product: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:  # fmt: skip
    """Nadam; `u_product` is prod_{i<=step} mu_i, i.e. already advanced for this step."""
    beta1, beta2, epsilon = hp
    dtype = var.dtype
    grad, lr, t = _cast(grad, dtype), _cast(lr, dtype), _cast(step, dtype)
    u_t = nadam_momentum(step, beta1, dtype)
    u_t_1 = nadam_momentum(step + 1, beta1, dtype)
    u_product_t = _cast(u_product, dtype)
    u_product_t_1 = u_product_t * u_t_1
    beta1, beta2 = _cast(beta1, dtype), _cast(beta2, dtype)
    beta2_power = tf.pow(beta2, t)
    # Unlike Adam, Keras' Nadam forms 1 - beta in the variable dtype; keep that order.
    m = m + (grad - m) * (1 - beta1)
    v = v + (tf.square(grad) - v) * (1 - beta2)
    m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * grad) / (1 - u_product_t)
    v_hat = v / (1 - beta2_power)
    return var - (m_hat * lr) / (tf.sqrt(v_hat) + _cast(epsilon, dtype)), m, v


# ----------------------------------------------------------------------------
# Optimizers: slots + assignment around the rules above.
# ----------------------------------------------------------------------------


class Optimizer:
    """Shared machinery: step counter, learning rate, hyperparameters, per-variable slots, state I/O."""

    slot_names: ClassVar[tuple[str, ...]] = ()
    hyperparameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, learning_rate: LearningRate, **hyperparameters: float) -> None:
        # A schedule (callable) is kept as given; a constant rate is a hyperparameter like the others.
        self.learning_rate = learning_rate if callable(learning_rate) else None
        if self.learning_rate is None:
            hyperparameters = {"learning_rate": float(learning_rate), **hyperparameters}
        self.hyper = {
            name: tf.Variable(float(value), dtype=tf.float64, trainable=False, name=name)
            for name, value in hyperparameters.items()
        }
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.slots: dict[str, list[tf.Variable]] = {}
        self._index: dict[object, int] | None = None

    def variables(self) -> dict[str, Any]:
        """Every variable `apply_gradients` uses besides the model's: step counter, slots, hyperparameters."""
        return {"iterations": self.iterations, "slots": self.slots, "extra": self._extra_state(), "hyper": self.hyper}

    @classmethod
    def on(
        cls, variables: dict[str, Any], weights: Sequence[tf.Variable], learning_rate: LearningRate | None = None
    ) -> Optimizer:
        """This kind of optimizer over the `variables()` of one built on `weights`, creating no variable.

        For a compiled step that takes both as arguments: its one program then serves every optimizer of this
        kind and shapes. ``learning_rate`` is the schedule (made from the step's arguments too), or None for
        the constant rate among the hyperparameters.
        """
        optimizer = cls.__new__(cls)
        optimizer.learning_rate = learning_rate
        optimizer.iterations = variables["iterations"]
        optimizer.slots = variables["slots"]
        optimizer.hyper = variables["hyper"]
        for name, variable in variables["extra"].items():
            setattr(optimizer, name, variable)
        optimizer._index = {v.ref(): i for i, v in enumerate(weights)}
        return optimizer

    @property
    def built(self) -> bool:
        return self._index is not None

    def build(self, variables: Sequence[tf.Variable]) -> None:
        """Create the zero slots; their position in `variables` is their key. No-op once built."""
        if self.built:
            return
        variables = list(variables)
        self.slots = {
            name: [
                tf.Variable(tf.zeros(v.shape, dtype=v.dtype), trainable=False, name=f"{name}_{i}")
                for i, v in enumerate(variables)
            ]
            for name in self.slot_names
        }
        self._build_extra(variables)
        self._index = {v.ref(): i for i, v in enumerate(variables)}

    def _build_extra(self, variables: list[tf.Variable]) -> None:
        """Hook for state that is not one slot per variable."""

    def current_learning_rate(self) -> tf.Tensor:
        """The step size for the next update: the schedule at `iterations` (before increment)."""
        if self.learning_rate is not None:
            return tf.convert_to_tensor(self.learning_rate(tf.convert_to_tensor(self.iterations)))
        return tf.convert_to_tensor(self.hyper["learning_rate"])

    def apply_gradients(self, grads_and_vars: Iterable[tuple[tf.Tensor | None, tf.Variable]]) -> None:
        """One update of every variable with a gradient (None gradients are skipped, as in Keras)."""
        pairs = list(grads_and_vars)
        if not self.built:
            self.build([v for _, v in pairs])
        assert self._index is not None
        indexed = []
        for grad, var in pairs:
            if grad is None:
                continue
            i = self._index.get(var.ref())
            if i is None:
                raise ValueError(f"variable {var.name!r} was not in the list the optimizer was built with")
            indexed.append((i, grad, var))
        lr = self.current_learning_rate()
        step = self.iterations + 1
        # Each hyperparameter read once a step, not once a variable: fewer ops in a graph run without XLA.
        hp = {name: tf.convert_to_tensor(value) for name, value in self.hyper.items()}
        self._before_updates(step, hp)
        for i, grad, var in indexed:
            self._update(i, var, grad, lr, step, hp)
        self.iterations.assign_add(1)

    def _before_updates(self, step: tf.Tensor, hp: dict[str, tf.Tensor]) -> None:
        """Hook for per-step (not per-variable) state."""
        return  # a docstring-only body leaves AutoGraph an empty block it cannot convert

    def _update(self, i: int, var: tf.Variable, grad: tf.Tensor, lr: tf.Tensor, step: tf.Tensor,
                hp: dict[str, tf.Tensor]) -> None:  # fmt: skip
        raise NotImplementedError

    def _extra_state(self) -> dict[str, tf.Variable]:
        return {}

    def _state_variables(self) -> dict[str, tf.Variable]:
        state = {"iterations": self.iterations}
        for name, slots in self.slots.items():
            state.update({f"{name}/{i}": slot for i, slot in enumerate(slots)})
        state.update(self._extra_state())
        return state

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the step counter and every slot, keyed by `np.savez`-safe names."""
        return {key: np.array(var.numpy()) for key, var in self._state_variables().items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore `get_state()` output exactly; the optimizer must be built on matching variables."""
        if not self.built:
            raise ValueError("build the optimizer on the model's variables before set_state")
        targets = self._state_variables()
        if set(state) != set(targets):
            missing = sorted(set(targets) - set(state))
            extra = sorted(set(state) - set(targets))
            raise ValueError(f"optimizer state keys do not match: missing {missing}, unexpected {extra}")
        for key, var in targets.items():
            value = np.asarray(state[key], dtype=var.dtype.as_numpy_dtype)
            if value.shape != tuple(var.shape):
                raise ValueError(f"optimizer state {key!r}: shape {value.shape} != {tuple(var.shape)}")
        for key, var in targets.items():
            var.assign(np.asarray(state[key], dtype=var.dtype.as_numpy_dtype))


class SGD(Optimizer):
    """Plain gradient descent."""

    def _update(self, i: int, var: tf.Variable, grad: tf.Tensor, lr: tf.Tensor, step: tf.Tensor,
                hp: dict[str, tf.Tensor]) -> None:  # fmt: skip
        var.assign(sgd_update(var, grad, lr))


class Momentum(Optimizer):
    """Heavy-ball momentum: smooths the direction across steps."""

    slot_names = ("m",)
    hyperparameters = ("momentum",)

    def __init__(self, learning_rate: LearningRate, *, momentum: float = 0.9) -> None:
        super().__init__(learning_rate, momentum=momentum)

    rule = staticmethod(momentum_update)

    def _update(self, i: int, var: tf.Variable, grad: tf.Tensor, lr: tf.Tensor, step: tf.Tensor,
                hp: dict[str, tf.Tensor]) -> None:  # fmt: skip
        new_var, m = self.rule(var, grad, self.slots["m"][i], lr, hp["momentum"])
        self.slots["m"][i].assign(m)
        var.assign(new_var)


class NAG(Momentum):
    """Nesterov momentum: the gradient correction is applied at the look-ahead point."""

    rule = staticmethod(nag_update)


class RMSprop(Optimizer):
    """Per-coordinate step sizes from a running mean of squared gradients."""

    slot_names = ("v",)
    hyperparameters = ("beta", "epsilon")

    def __init__(self, learning_rate: LearningRate, *, beta: float = 0.9, epsilon: float = 1e-7) -> None:
        super().__init__(learning_rate, beta=beta, epsilon=epsilon)

    def _update(self, i: int, var: tf.Variable, grad: tf.Tensor, lr: tf.Tensor, step: tf.Tensor,
                hp: dict[str, tf.Tensor]) -> None:  # fmt: skip
        new_var, v = rmsprop_update(var, grad, self.slots["v"][i], lr, hp["beta"], hp["epsilon"])
        self.slots["v"][i].assign(v)
        var.assign(new_var)


class Adam(Optimizer):
    """Momentum on top of RMSprop, both bias-corrected."""

    slot_names = ("m", "v")
    hyperparameters = ("beta1", "beta2", "epsilon")

    def __init__(
        self, learning_rate: LearningRate, *, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-7
    ) -> None:
        super().__init__(learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon)

    def _update(self, i: int, var: tf.Variable, grad: tf.Tensor, lr: tf.Tensor, step: tf.Tensor,
                hp: dict[str, tf.Tensor]) -> None:  # fmt: skip
        m, v = self.slots["m"][i], self.slots["v"][i]
        new_var, new_m, new_v = self._rule(var, grad, m, v, lr, step, Moments(hp["beta1"], hp["beta2"], hp["epsilon"]))
        m.assign(new_m)
        v.assign(new_v)
        var.assign(new_var)

    def _rule(self, *args: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return adam_update(*args)


class Nadam(Adam):
    """Adam with Nesterov momentum and Keras' warming-up momentum schedule."""

    u_product: tf.Variable | None = None  # product of the momentum schedule, made in build

    def _build_extra(self, variables: list[tf.Variable]) -> None:
        # One shared product, in the first variable's dtype, as Keras keeps it.
        dtype = variables[0].dtype if variables else tf.float32
        self.u_product = tf.Variable(tf.ones((), dtype=dtype), trainable=False, name="u_product")

    def _before_updates(self, step: tf.Tensor, hp: dict[str, tf.Tensor]) -> None:
        assert self.u_product is not None
        self.u_product.assign(nadam_u_product_update(self.u_product, step, hp["beta1"]))

    def _rule(self, *args: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return nadam_update(*args, self.u_product)

    def _extra_state(self) -> dict[str, tf.Variable]:
        return {"u_product": self.u_product} if self.u_product is not None else {}


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nag": NAG,
    "rmsprop": RMSprop,
    "adam": Adam,
    "nadam": Nadam,
}
assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES, "registry and config.OPTIMIZER_NAMES must agree"


def make_optimizer(
    name: str,
    learning_rate: LearningRate,
    *,
    momentum: float = 0.9,
    beta: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-7,
) -> Optimizer:
    """Build by name, handing each optimizer only the hyperparameters it uses."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (choose from {', '.join(OPTIMIZERS)})")
    cls = OPTIMIZERS[name]
    given = {"momentum": momentum, "beta": beta, "beta1": beta1, "beta2": beta2, "epsilon": epsilon}
    return cls(learning_rate, **{key: given[key] for key in cls.hyperparameters})
