"""python scripts/bench_train.py [--epochs N] [--threads N] [--markdown] [--trainer-only]

Measures training throughput (training samples per second) of four ways to train the same
MLP on the same data, in one process: Fashion-MNIST's training split (54,000 examples after
the 10% stratified validation hold-out), 3 hidden layers of 128 relu units, Glorot-uniform
("xavier") init, Adam with learning rate 1e-3, batch size 64, softmax cross-entropy.

1. ``ours``: ``tune_mlp.mlp.trainer.Trainer``, whole epoch in one XLA-compiled ``tf.while_loop``.
2. ``ours without XLA``: the same loop with ``jit_compile=False`` (a plain ``tf.function`` graph).
3. ``Keras fit``: a ``keras.Sequential`` of ``Dense`` layers trained with ``model.fit`` (Keras'
   default compile options, i.e. no XLA on a CPU-only machine and no extra metrics).
4. ``eager GradientTape``: a Python loop over mini-batches with no ``tf.function``, as in the
   original study: ``tf.GradientTape`` plus ``keras.optimizers.Adam.apply_gradients``.

Each loop first trains one untimed warm-up epoch (tracing / XLA compilation), then ``--epochs``
timed epochs whose median is reported. Only the training pass is timed: our validation pass
after each epoch and Keras' per-``fit`` setup are excluded (a Keras callback times the epoch).
The eager loop is too slow for whole epochs, so it times ``--eager-batches`` mini-batches
after ``--eager-warmup`` untimed ones and extrapolates the epoch time from their rate.
The verdict checks the targets: ours >= 50,000 samples/s, >= 3.5x Keras fit, >= 20x eager.
``--trainer-only`` runs loops 1 and 2 alone: to compare two checkouts of the trainer (copy this file into the
other checkout's ``scripts/``, as it imports the checkout it lies in).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up INFO/WARNING lines out of the table
# Importing TensorFlow does not start its thread pools, so --threads can still size them in main().
import tensorflow as tf

from tune_mlp.config import TrainConfig
from tune_mlp.data import Splits, load_splits
from tune_mlp.mlp.model import data_loss, forward, init_weights
from tune_mlp.mlp.network import layer_sizes
from tune_mlp.mlp.trainer import Trainer, configure_threads

TARGET_SAMPLES_PER_SECOND = 50_000.0
TARGET_VS_KERAS = 3.5
TARGET_VS_EAGER = 20.0

# The one configuration every loop trains (TrainConfig defaults: 3x128 relu, xavier, adam 1e-3, cross-entropy).
BASE_CONFIG = TrainConfig(
    dataset="fashion_mnist",
    num_layers=3,
    hidden_size=128,
    activation="relu",
    weight_init="xavier",
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=64,
    loss="cross_entropy",
    seed=0,
)


@dataclass(frozen=True)
class Measurement:
    name: str
    samples_per_second: float
    epoch_seconds: float  # measured (median), or extrapolated for the eager loop
    note: str


def _median_measurement(name: str, note: str, rates: Sequence[float], seconds: Sequence[float]) -> Measurement:
    return Measurement(name, statistics.median(rates), statistics.median(seconds), note)


def bench_ours(splits: Splits, epochs: int, jit_compile: bool) -> Measurement:
    """Trainer: one warm-up epoch (compiles the loop), then ``epochs`` timed epochs."""
    config = TrainConfig(**{**BASE_CONFIG.to_dict(), "epochs": epochs + 1, "jit_compile": jit_compile})
    trainer = Trainer(config, splits)
    trainer.train_epoch()  # warm-up: tracing + XLA compilation
    results = [trainer.train_epoch() for _ in range(epochs)]
    name = "ours" if jit_compile else "ours without XLA"
    note = "Trainer, tf.while_loop" + (" + XLA" if jit_compile else ", jit_compile=False")
    return _median_measurement(name, note, [r.samples_per_second for r in results], [r.epoch_seconds for r in results])


def build_keras_model(config: TrainConfig) -> Any:
    import keras

    sizes = layer_sizes(config)
    model = keras.Sequential([keras.Input(shape=(sizes[0],))])
    for i, units in enumerate(sizes[1:]):
        hidden = i < len(sizes) - 2
        model.add(
            keras.layers.Dense(
                units,
                activation=config.activation if hidden else None,
                kernel_initializer=keras.initializers.GlorotUniform(seed=config.seed + i),
                bias_initializer="zeros",
            )
        )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def bench_keras_fit(splits: Splits, epochs: int) -> Measurement:
    """``model.fit(epochs=1)`` per epoch; a callback times the epoch itself, not fit's setup."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    model = build_keras_model(BASE_CONFIG)
    x, y = np.asarray(splits.x_train, np.float32), np.asarray(splits.y_train, np.int64)
    timer = EpochTimer()
    for _ in range(epochs + 1):  # the first epoch is the warm-up (tracing)
        model.fit(x, y, batch_size=BASE_CONFIG.batch_size, epochs=1, shuffle=True, verbose=0, callbacks=[timer])
    seconds = timer.seconds[1:]
    return _median_measurement(
        "Keras fit",
        f"keras.Sequential, model.fit (jit_compile={model.jit_compile})",
        [len(x) / s for s in seconds],
        seconds,
    )


def bench_eager(splits: Splits, batches: int, warmup: int) -> Measurement:
    """A Python loop of eager GradientTape steps: ``warmup`` untimed batches, then ``batches`` timed."""
    import keras

    config = BASE_CONFIG
    bs = config.batch_size
    variables = [
        tf.Variable(w, name=f"w{i}")
        for i, w in enumerate(init_weights(layer_sizes(config), config.weight_init, config.seed))
    ]
    optimizer = keras.optimizers.Adam(config.learning_rate)
    x, y = splits.x_train, splits.y_train
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(x))
    steps_per_epoch = len(x) // bs

    def step(k: int) -> None:
        index = order[(k % steps_per_epoch) * bs : (k % steps_per_epoch + 1) * bs]
        xb = tf.constant(x[index], tf.float32)
        yb = tf.constant(y[index], tf.int32)
        with tf.GradientTape() as tape:
            loss = data_loss(forward(variables, xb, config.activation), yb, config.loss)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    for k in range(warmup):
        step(k)
    start = time.perf_counter()
    for k in range(warmup, warmup + batches):
        step(k)
    float(variables[0][0, 0])  # wait for the last update before stopping the clock
    seconds = time.perf_counter() - start
    rate = batches * bs / seconds
    return Measurement(
        "eager GradientTape",
        rate,
        len(x) / rate,
        f"Python loop, no tf.function; {batches} batches timed, epoch extrapolated",
    )


def _ratio(ours: Measurement, other: Measurement) -> float:
    return ours.samples_per_second / other.samples_per_second


def format_table(rows: Sequence[Measurement], ours: Measurement, markdown: bool) -> str:
    header = ("loop", "samples/s", "s/epoch", "ours ÷ this", "what")
    body = [
        (
            m.name,
            f"{m.samples_per_second:,.0f}",
            f"{m.epoch_seconds:,.2f}" + (" (extrap.)" if m.name.startswith("eager") else ""),
            f"{_ratio(ours, m):.1f}×",
            m.note,
        )
        for m in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---:", "---:", "---:", "---"]) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    right = (False, True, True, True, False)

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])


def verdict(ours: Measurement, keras_fit: Measurement | None, eager: Measurement | None) -> str:
    checks = [
        (
            f"ours {ours.samples_per_second:,.0f} samples/s ≥ {TARGET_SAMPLES_PER_SECOND:,.0f}",
            ours.samples_per_second >= TARGET_SAMPLES_PER_SECOND,
        ),
    ]
    if keras_fit:
        ratio = _ratio(ours, keras_fit)
        checks.append((f"{ratio:.1f}× Keras fit ≥ {TARGET_VS_KERAS}×", ratio >= TARGET_VS_KERAS))
    if eager:
        ratio = _ratio(ours, eager)
        checks.append((f"{ratio:.1f}× eager ≥ {TARGET_VS_EAGER:g}×", ratio >= TARGET_VS_EAGER))
    passed = all(ok for _, ok in checks)
    parts = "; ".join(f"{text} {'ok' if ok else 'MISSED'}" for text, ok in checks)
    return f"verdict: {'PASS' if passed else 'FAIL'} ({parts})"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per loop after the warm-up (median)")
    parser.add_argument("--threads", type=int, default=None, help="TF intra/inter-op threads (default: TF's)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown (for the README)")
    parser.add_argument("--eager-batches", type=int, default=300, help="timed mini-batches of the eager loop")
    parser.add_argument("--eager-warmup", type=int, default=10, help="untimed mini-batches before them")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: the usual places)")
    parser.add_argument("--trainer-only", action="store_true", help="only ours and ours without XLA")
    args = parser.parse_args(argv)
    for name in ("epochs", "eager_batches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.eager_warmup < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--eager-warmup must be >= 0 and --threads >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_threads(args.threads)
    splits = load_splits(BASE_CONFIG.dataset, args.data_dir, BASE_CONFIG.val_fraction, BASE_CONFIG.split_seed)

    import keras

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = args.threads or "TF default"
    print(
        f"# {len(splits.x_train):,} training examples, 3x128 relu, xavier, adam 1e-3, batch 64; "
        f"{args.epochs} timed epoch(s) after 1 warm-up; threads: {threads}; "
        f"{os.cpu_count()} CPUs, load avg {load:.2f}; TF {tf.__version__}, Keras {keras.__version__}, "
        f"Python {platform.python_version()}",
        file=sys.stderr,
    )

    benches: list[tuple[str, Callable[[], Measurement]]] = [
        ("ours", lambda: bench_ours(splits, args.epochs, jit_compile=True)),
        ("ours without XLA", lambda: bench_ours(splits, args.epochs, jit_compile=False)),
        ("Keras fit", lambda: bench_keras_fit(splits, args.epochs)),
        ("eager GradientTape", lambda: bench_eager(splits, args.eager_batches, args.eager_warmup)),
    ]
    if args.trainer_only:
        benches = benches[:2]
    rows: list[Measurement] = []
    for name, bench in benches:
        start = time.perf_counter()
        rows.append(bench())
        print(
            f"# {name}: {rows[-1].samples_per_second:,.0f} samples/s (bench took {time.perf_counter() - start:.0f} s)",
            file=sys.stderr,
        )

    ours = rows[0]
    by_name = {m.name: m for m in rows}
    print(format_table(rows, ours, args.markdown))
    print()
    print(verdict(ours, by_name.get("Keras fit"), by_name.get("eager GradientTape")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
