"""A stand-in for the MLP trainable: each epoch sleeps, then reports a learning curve and a small checkpoint.

    python -m tune_mlp.search --stand-in 1 --samples 200 --concurrency 32 --no_wandb

Everything but the training runs for real: HyperOpt, ASHA, checkpoint retention, W&B, the time budget,
extensions, ``best.json`` and ``python -m analysis``. Use it to try a search set-up (a sweep file, a
cluster, a budget, a storage URI) before paying for the training, and to time the machinery itself, as
Ray's release tests do with ``ray.tune.utils.release_test_util`` (``scripts/bench_scale.py``).

The curve is a function of the config (the learning rate's distance from 1e-3, dropout, width, a hash of
the rest) plus a little seeded noise, so TPE has something to learn and ASHA something to stop. The
checkpoint is in ``tune_mlp.mlp.checkpoint``'s format with zero weights of the config's shapes
(compressed: a few KB), so analysis reads it; its test score is chance (0.10). No TensorFlow is imported.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp.config import TrainConfig
from tune_mlp.mlp.checkpoint import CONFIG_FILE, STATE_FILE, WEIGHTS_FILE, weight_names
from tune_mlp.mlp.network import layer_sizes
from tune_mlp.search.budget import TrialBudget
from tune_mlp.search.trainable import Epoch, report_epochs, resumed_checkpoint, trial_config


def final_accuracy(config: TrainConfig) -> float:
    """Where the stand-in's curve of this config ends: 0.70-0.91, best near lr 1e-3, dropout 0.2, wide layers."""
    lr_miss = (math.log10(config.learning_rate) + 3.0) ** 2  # 0 at 1e-3, 1 at 1e-2 or 1e-4
    dropout_miss = (config.dropout - 0.2) ** 2
    width = min(config.hidden_size, 1024) / 1024
    rest = int(hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:8], 16) / 2**32
    return 0.91 - 0.08 * min(lr_miss, 2.0) - 0.2 * dropout_miss - 0.02 * (1 - width) - 0.02 * rest


def curve_point(config: TrainConfig, epoch: int) -> dict[str, float]:
    """The metrics of ``epoch`` (1-based): an exponential approach to ``final_accuracy`` with seeded noise."""
    final = final_accuracy(config)
    seed = int(hashlib.sha256(f"{config.to_dict()}{epoch}".encode()).hexdigest()[:8], 16)
    noise = np.random.default_rng(seed).normal(0.0, 0.003)
    val_accuracy = final - (final - 0.1) * math.exp(-epoch / 2.5) + noise
    return {
        "epoch": epoch,
        "val_accuracy": val_accuracy,
        "val_loss": 2.5 * (1.0 - val_accuracy),
        "train_accuracy": min(1.0, val_accuracy + 0.01 * epoch / (epoch + 5)),
        "train_loss": 2.4 * (1.0 - val_accuracy),
        "learning_rate": config.learning_rate,
    }


def save_standin_checkpoint(directory: str | Path, config: TrainConfig, metrics: dict[str, Any],
                            history: list[dict[str, Any]]) -> Path:  # fmt: skip
    """A checkpoint ``load_checkpoint`` accepts: config, zero weights of the network's shapes, the history."""
    directory = Path(directory)
    config.save(directory / CONFIG_FILE)
    sizes = layer_sizes(config)
    shapes = [shape for n_in, n_out in zip(sizes[:-1], sizes[1:]) for shape in ((n_in, n_out), (n_out,))]
    arrays = {name: np.zeros(shape, np.float32) for name, shape in zip(weight_names(len(shapes)), shapes)}
    np.savez_compressed(directory / WEIGHTS_FILE, **arrays)
    state = {"epoch": metrics["epoch"], "metrics": metrics, "history": history}
    (directory / STATE_FILE).write_text(json.dumps(state) + "\n")
    return directory


def train_standin(tune_config: dict[str, Any], seconds_per_epoch: float, max_epochs: int,
                  budget: TrialBudget | None = None, **_: Any) -> None:  # fmt: skip
    """The stand-in trainable: ``train_mlp``'s reports and checkpoints, with a sleep for each epoch's training."""
    config = trial_config(tune_config, max_epochs, budget)
    resume = resumed_checkpoint()  # a retried or restored trial continues from its last epoch, like the MLP's
    history: list[dict[str, Any]] = resume.history if resume else []

    def epochs() -> Iterator[Epoch]:
        for epoch in range(len(history) + 1, config.epochs + 1):
            started = time.time()
            time.sleep(seconds_per_epoch)
            yield curve_point(config, epoch) | {"epoch_seconds": time.time() - started}, save

    def save(directory: str, metrics: dict[str, Any]) -> None:
        history.append(metrics)
        save_standin_checkpoint(directory, config, metrics, history)

    report_epochs(epochs(), config, len(history))


def standin_sizes(config: TrainConfig) -> tuple[int, int]:
    """The train and validation sizes the stand-in pretends to have (Fashion-MNIST's 60,000 split as configured):
    what a time budget sizes trials and ``max_t`` from."""
    n_val = int(round(60_000 * config.val_fraction))
    return 60_000 - n_val, n_val
