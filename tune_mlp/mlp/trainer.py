"""The compiled training loop: whole chunks of an epoch run inside one ``tf.function``.

Running many batches per call (a ``tf.while_loop`` over mini-batches, XLA-compiled) removes
the per-step Python and dispatch cost that dominates a small MLP on CPU; see
``scripts/bench_train.py`` for the measured gain over Keras ``fit`` and an eager loop.

The compiled functions depend only on a run's ``Structure`` (shapes and the ops they run) and take
everything else as arguments: the weights, the optimizer's variables (its hyperparameters among them)
and the run's scalars (learning rate and its schedule's lengths, weight decay, dropout rate, seed).
They are made once per structure per process (``train_program``), because TensorFlow never frees a
compiled program: a worker that Ray Tune reuses for trial after trial then stops growing once it has
seen the search space's structures (``scripts/bench_soak.py``), instead of keeping ~10 MB per trial.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from tune_mlp.config import TrainConfig
from tune_mlp.data import Splits
from tune_mlp.mlp.checkpoint import Checkpoint
from tune_mlp.mlp.model import correct_count, data_loss, forward, init_weights, l2_penalty
from tune_mlp.mlp.network import layer_sizes
from tune_mlp.mlp.optimizers import OPTIMIZERS, Optimizer, make_optimizer

Scalars = dict[str, tf.Tensor]


def learning_rate_at(
    step: tf.Tensor, base: float | tf.Tensor, schedule: str, total_steps: float | tf.Tensor,
    warmup_steps: float | tf.Tensor,
) -> tf.Tensor:  # fmt: skip
    """Step size at a 0-based step: linear warm-up, then constant or cosine decay to 0.

    ``base`` and the step counts may be tensors (a compiled step's arguments); all are rounded to float32 first,
    as Python constants would be. With no warm-up the warm-up branch is computed but never selected.
    """
    step = tf.cast(step, tf.float32)
    base, total_steps, warmup_steps = (tf.cast(v, tf.float32) for v in (base, total_steps, warmup_steps))
    if schedule == "cosine":
        decay_steps = tf.maximum(total_steps - warmup_steps, 1.0)
        progress = tf.clip_by_value((step - warmup_steps) / decay_steps, 0.0, 1.0)
        lr = base * 0.5 * (1.0 + tf.cos(math.pi * progress))
    else:
        lr = base
    return tf.where(step < warmup_steps, base * (step + 1.0) / warmup_steps, lr)


def configure_threads(num_threads: int | None) -> None:
    """Size TensorFlow's pools to the CPUs a run owns; only possible before TF starts executing."""
    if not num_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, num_threads))
    except RuntimeError:
        pass  # TF already initialised in this process (a reused worker): the pools stay as sized then


def grow_gpu_memory() -> list[str]:
    """Let TensorFlow take GPU memory as it needs it, not all at once, so trials can share a GPU.

    By default TensorFlow maps nearly all of a GPU's memory when it first uses it, and a second trial on
    the same GPU (``--gpus-per-trial 0.5``) then fails to allocate. Possible only before TensorFlow runs its
    first op; afterwards (a reused worker) the setting stays as the first trial left it. Returns the GPUs
    that grow; none without a GPU, where it does nothing.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass  # TensorFlow already initialised its devices in this process
    return [gpu.name for gpu in gpus if tf.config.experimental.get_memory_growth(gpu)]


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    epoch_seconds: float
    samples_per_second: float
    diverged: bool

    def metrics(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Structure:
    """What a run's compiled programs depend on; runs that agree on it share them (``train_program``)."""

    sizes: tuple[int, ...]  # units per layer, input to output
    batch_size: int
    activation: str
    loss: str
    optimizer: str
    lr_schedule: str  # constant | cosine: different ops; the rate and the schedule's lengths are arguments
    dropout: bool  # rate > 0: the masks are in the program (the rate is an argument); at 0 they cost nothing
    weight_decay: bool  # coefficient > 0: the penalty's gradient is in the program; at 0 it costs nothing
    jit_compile: bool

    @classmethod
    def of(cls, config: TrainConfig, batch_size: int) -> Structure:
        return cls(
            sizes=tuple(layer_sizes(config)),
            batch_size=batch_size,
            activation=config.activation,
            loss=config.loss,
            optimizer=config.optimizer,
            lr_schedule=config.lr_schedule,
            dropout=config.dropout > 0.0,
            weight_decay=config.weight_decay > 0.0,
            jit_compile=config.jit_compile,
        )


def run_scalars(config: TrainConfig, steps_per_epoch: int) -> Scalars:
    """A run's values that its compiled step takes as arguments (the optimizer's are its own variables).

    float64, so a value is rounded to the program's float32 exactly as the Python float constant it replaces.
    """

    def f64(value: float) -> tf.Tensor:
        return tf.constant(value, tf.float64)

    return {
        "learning_rate": f64(config.learning_rate),
        "total_steps": f64(steps_per_epoch * config.epochs),
        "warmup_steps": f64(int(round(config.warmup_epochs * steps_per_epoch))),
        "weight_decay": f64(config.weight_decay),
        "dropout": f64(config.dropout),
        "seed": tf.constant([config.seed, 0], tf.int64),
    }


def schedule(structure: Structure, scalars: Scalars) -> Callable[[tf.Tensor], tf.Tensor]:
    """The learning rate as a function of the optimizer's step counter."""
    return lambda step: learning_rate_at(
        step, scalars["learning_rate"], structure.lr_schedule, scalars["total_steps"], scalars["warmup_steps"]
    )


def train_steps(
    structure: Structure, weights: list[tf.Variable], optimizer_variables: dict[str, Any], scalars: Scalars,
    x: tf.Tensor, y: tf.Tensor, order: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:  # fmt: skip
    """One optimizer step per ``batch_size`` indices of ``order``; returns summed loss and hits.

    Everything it reads or writes is an argument, so one compiled program serves every run of ``structure``.
    ``order`` has a static length so XLA compiles once per chunk size (an offset argument would be baked into
    the program as a constant: one compilation per chunk).
    """
    bs = structure.batch_size
    optimizer = OPTIMIZERS[structure.optimizer].on(optimizer_variables, weights, schedule(structure, scalars))
    count = tf.shape(order)[0] // bs
    dropout = scalars["dropout"] if structure.dropout else 0.0
    decay = tf.cast(scalars["weight_decay"], tf.float32)

    def step(i: tf.Tensor, loss_sum: tf.Tensor, hits: tf.Tensor) -> tuple[tf.Tensor, ...]:
        index = tf.slice(order, [i * bs], [bs])
        xb, yb = tf.gather(x, index), tf.gather(y, index)
        step_seed = scalars["seed"] + tf.stack([tf.constant(0, tf.int64), optimizer.iterations])
        with tf.GradientTape() as tape:
            logits = forward(weights, xb, structure.activation, dropout, step_seed)
            loss = data_loss(logits, yb, structure.loss)
            total = loss + decay * l2_penalty(weights) if structure.weight_decay else loss
        grads = tape.gradient(total, weights)
        optimizer.apply_gradients(zip(grads, weights))
        return i + 1, loss_sum + loss, hits + correct_count(logits, yb)

    zero = tf.constant(0.0)
    _, loss_sum, hits = tf.while_loop(lambda i, *_: i < count, step, [tf.constant(0), zero, zero])
    return loss_sum, hits


def evaluate_graph(activation: str, loss: str, weights: list[tf.Variable], x: tf.Tensor,
                   y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:  # fmt: skip
    logits = forward(weights, x, activation)
    return data_loss(logits, y, loss), correct_count(logits, y) / tf.cast(tf.shape(y)[0], tf.float32)


# One tf.function per structure for the whole process: TensorFlow keeps every program it compiles, so
# making them per run would grow a reused worker by every trial. Each retraces only for new data shapes.
@functools.cache
def train_program(structure: Structure) -> Any:
    """The compiled ``train_steps`` of ``structure`` (a ``tf.function``), made on first use."""
    return tf.function(functools.partial(train_steps, structure), jit_compile=structure.jit_compile)


@functools.cache
def evaluate_program(activation: str, loss: str, jit_compile: bool) -> Any:
    """The compiled ``evaluate_graph`` (a ``tf.function``): it depends on fewer choices than training."""
    return tf.function(functools.partial(evaluate_graph, activation, loss), jit_compile=jit_compile)


class Trainer:
    """Owns the weights and optimizer of one run and trains it epoch by epoch."""

    def __init__(self, config: TrainConfig, splits: Splits, resume: Checkpoint | None = None):
        self.config = config
        n_train = len(splits.x_train)
        self.batch_size = min(config.batch_size, n_train)
        # The remainder of each shuffled epoch is dropped so every batch has one static shape for XLA.
        self.steps_per_epoch = n_train // self.batch_size
        self.structure = Structure.of(config, self.batch_size)
        self.scalars = run_scalars(config, self.steps_per_epoch)

        weights = resume.weights if resume else init_weights(layer_sizes(config), config.weight_init, config.seed)
        self.variables = [tf.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
        self.learning_rate = schedule(self.structure, self.scalars)
        self.optimizer: Optimizer = make_optimizer(
            config.optimizer,
            self.learning_rate,
            momentum=config.momentum,
            beta=config.beta,
            beta1=config.beta1,
            beta2=config.beta2,
            epsilon=config.epsilon,
        )
        self.optimizer.build(self.variables)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        if resume:
            if resume.optimizer_state:
                self.optimizer.set_state(resume.optimizer_state)
            self.epoch = resume.epoch
            self.history = list(resume.history)

        self.x_train = tf.constant(splits.x_train, tf.float32)
        self.y_train = tf.constant(splits.y_train, tf.int32)
        self.x_val = tf.constant(splits.x_val, tf.float32)
        self.y_val = tf.constant(splits.y_val, tf.int32)

    def _train_steps(self, order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        program = train_program(self.structure)
        return program(self.variables, self.optimizer.variables(), self.scalars, self.x_train, self.y_train, order)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) without dropout; the loss excludes weight decay so runs compare."""
        program = evaluate_program(self.config.activation, self.config.loss, self.config.jit_compile)
        loss, accuracy = program(self.variables, tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.int32))
        return float(loss), float(accuracy)

    def train_epoch(self, chunks: int = 1, on_chunk: Callable[[int], None] | None = None) -> EpochResult:
        """One shuffled pass, in ``chunks`` compiled calls so a progress bar can move between them."""
        rng = np.random.default_rng([self.config.seed, self.epoch])  # same order on resume
        order = rng.permutation(len(self.x_train)).astype(np.int32)
        per_call = math.ceil(self.steps_per_epoch / max(1, chunks))
        start = time.perf_counter()
        loss_sum = hits = 0.0
        done = 0
        diverged = False
        while done < self.steps_per_epoch:
            count = min(per_call, self.steps_per_epoch - done)
            chunk = tf.constant(order[done * self.batch_size : (done + count) * self.batch_size])
            chunk_loss, chunk_hits = self._train_steps(chunk)
            loss_sum += float(chunk_loss)
            hits += float(chunk_hits)
            done += count
            if on_chunk:
                on_chunk(count)
            if not math.isfinite(loss_sum):
                diverged = True
                break
        seconds = time.perf_counter() - start
        samples = done * self.batch_size
        val_loss, val_accuracy = self.evaluate(self.x_val, self.y_val)
        diverged = diverged or not math.isfinite(val_loss)
        self.epoch += 1
        result = EpochResult(
            epoch=self.epoch,
            train_loss=loss_sum / max(done, 1),
            train_accuracy=hits / max(samples, 1),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            learning_rate=float(self.learning_rate(self.optimizer.iterations - 1)),
            epoch_seconds=seconds,
            samples_per_second=samples / seconds,
            diverged=diverged,
        )
        self.history.append(result.metrics())
        return result

    def epochs(self, train_epoch: Callable[[], EpochResult] | None = None) -> Iterator[EpochResult]:
        """Train up to ``config.epochs``; stops after an epoch whose loss is NaN or infinite.

        ``train_epoch`` replaces ``self.train_epoch`` for callers that wrap an epoch (a progress bar).
        """
        while self.epoch < self.config.epochs:
            result = (train_epoch or self.train_epoch)()
            yield result
            if result.diverged:
                return

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.variables]

    def checkpoint(self, metrics: dict[str, Any] | None = None) -> Checkpoint:
        return Checkpoint(
            config=self.config,
            weights=self.weights(),
            epoch=self.epoch,
            optimizer_state=self.optimizer.get_state(),
            history=list(self.history),
            metrics=dict(metrics or (self.history[-1] if self.history else {})),
        )

    def close(self) -> None:
        """Let go of the data on the device; the Trainer cannot train after this.

        Ray Tune reuses a trial's actor for the next trial, so a long search builds many Trainers in one
        process: each one's tensors must not outlive it. Its compiled programs are the process's, kept for
        the next run of the same structure (``train_program``).
        """
        self.x_train = self.y_train = self.x_val = self.y_val = None
