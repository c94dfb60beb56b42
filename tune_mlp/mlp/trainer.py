"""The compiled training loop: whole chunks of an epoch run inside one ``tf.function``.

Running many batches per call (a ``tf.while_loop`` over mini-batches, XLA-compiled) removes
the per-step Python and dispatch cost that dominates a small MLP on CPU; see
``scripts/bench_train.py`` for the measured gain over Keras ``fit`` and an eager loop.
"""

from __future__ import annotations

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
from tune_mlp.mlp.optimizers import make_optimizer


def learning_rate_at(step: tf.Tensor, base: float, schedule: str, total_steps: int, warmup_steps: int) -> tf.Tensor:
    """Step size at a 0-based step: linear warm-up, then constant or cosine decay to 0."""
    step = tf.cast(step, tf.float32)
    if schedule == "cosine":
        decay_steps = max(total_steps - warmup_steps, 1)
        progress = tf.clip_by_value((step - warmup_steps) / decay_steps, 0.0, 1.0)
        lr = base * 0.5 * (1.0 + tf.cos(math.pi * progress))
    else:
        lr = tf.constant(base, tf.float32)
    if warmup_steps > 0:
        lr = tf.where(step < warmup_steps, base * (step + 1.0) / warmup_steps, lr)
    return lr


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


class Trainer:
    """Owns the weights and optimizer of one run and trains it epoch by epoch."""

    def __init__(self, config: TrainConfig, splits: Splits, resume: Checkpoint | None = None):
        self.config = config
        n_train = len(splits.x_train)
        self.batch_size = min(config.batch_size, n_train)
        # The remainder of each shuffled epoch is dropped so every batch has one static shape for XLA.
        self.steps_per_epoch = n_train // self.batch_size
        total_steps = self.steps_per_epoch * config.epochs
        warmup_steps = int(round(config.warmup_epochs * self.steps_per_epoch))

        weights = resume.weights if resume else init_weights(layer_sizes(config), config.weight_init, config.seed)
        self.variables = [tf.Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
        self.learning_rate = lambda step: learning_rate_at(
            step, config.learning_rate, config.lr_schedule, total_steps, warmup_steps
        )
        self.optimizer = make_optimizer(
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
        self._train_steps = tf.function(self._train_steps_graph, jit_compile=config.jit_compile)
        self._evaluate = tf.function(self._evaluate_graph, jit_compile=config.jit_compile)

    def _train_steps_graph(self, x: tf.Tensor, y: tf.Tensor, order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One optimizer step per ``batch_size`` indices of ``order``; returns summed loss and hits.

        ``order`` has a static length so XLA compiles once per chunk size (an offset argument
        would be baked into the program as a constant: one compilation per chunk).
        """
        cfg, bs, variables = self.config, self.batch_size, self.variables
        count = tf.shape(order)[0] // bs
        seed = tf.constant([cfg.seed, 0], tf.int64)

        def step(i: tf.Tensor, loss_sum: tf.Tensor, hits: tf.Tensor) -> tuple[tf.Tensor, ...]:
            index = tf.slice(order, [i * bs], [bs])
            xb, yb = tf.gather(x, index), tf.gather(y, index)
            step_seed = seed + tf.stack([tf.constant(0, tf.int64), self.optimizer.iterations])
            with tf.GradientTape() as tape:
                logits = forward(variables, xb, cfg.activation, cfg.dropout, step_seed)
                loss = data_loss(logits, yb, cfg.loss)
                total = loss + cfg.weight_decay * l2_penalty(variables) if cfg.weight_decay else loss
            grads = tape.gradient(total, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            return i + 1, loss_sum + loss, hits + correct_count(logits, yb)

        zero = tf.constant(0.0)
        _, loss_sum, hits = tf.while_loop(lambda i, *_: i < count, step, [tf.constant(0), zero, zero])
        return loss_sum, hits

    def _evaluate_graph(self, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = forward(self.variables, x, self.config.activation)
        return data_loss(logits, y, self.config.loss), correct_count(logits, y) / tf.cast(tf.shape(y)[0], tf.float32)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean loss, accuracy) without dropout; the loss excludes weight decay so runs compare."""
        loss, accuracy = self._evaluate(tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(y, tf.int32))
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
            chunk_loss, chunk_hits = self._train_steps(self.x_train, self.y_train, chunk)
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
        """Let go of the compiled functions and the data on the device; the Trainer cannot train after this.

        Ray Tune reuses a trial's actor for the next trial, so a long search builds many Trainers in one
        process: each one's ``tf.function``s (their graphs, XLA programs) and tensors must not outlive it.
        """
        self._train_steps = self._evaluate = None
        self.x_train = self.y_train = self.x_val = self.y_val = None
