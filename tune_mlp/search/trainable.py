"""The Ray Tune function trainables, one report and checkpoint per epoch: the MLP (``tune_mlp.mlp.trainer``), or the
sleeping stand-in that runs everything but the training for real and imports no TensorFlow (docs/search.md).

    python -m tune_mlp.search --stand-in 1 --samples 200 --concurrency 32 --no_wandb
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import tune

from tune_mlp.config import METRIC, TrainConfig
from tune_mlp.data import Splits
from tune_mlp.mlp.checkpoint import (
    CONFIG_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    weight_names,
)
from tune_mlp.mlp.network import layer_sizes
from tune_mlp.search.plan import TrialBudget

# One epoch's metrics and how to write its checkpoint into a folder (None: the run diverged, nothing to keep).
Epoch = tuple[dict[str, Any], Callable[[str], Any] | None]


def trial_config(tune_config: dict[str, Any], max_epochs: int, budget: TrialBudget | None = None) -> TrainConfig:
    """The sampled values over the defaults; ``epochs`` is ASHA's ``max_t`` unless sampled, and under a time budget
    fewer for a config slower than the typical one, so that its full run costs no more than a typical trial's."""
    epochs = min(int(tune_config.get("epochs", max_epochs)), max_epochs)
    config = TrainConfig.from_dict({**tune_config, "epochs": epochs})
    if budget:
        config = dataclasses.replace(config, epochs=min(config.epochs, budget.epochs_for(config.to_dict(), max_epochs)))
    return config


def resumed_checkpoint() -> Checkpoint | None:
    """The trial's own checkpoint when Tune retries or restores it (a crash, a lost node, --resume); else None."""
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as directory:
            return load_checkpoint(directory)
    return None


def report_epochs(epochs: Iterable[Epoch], config: TrainConfig, resumed_from: int) -> None:
    """The trainables' one loop: each epoch reported to Tune with its checkpoint (a diverged one ends the trial), and
    where the trial runs (its Ray node, the GPUs Ray let it see), its epochs and the epoch this run started at."""
    node = {"node_id": ray.get_runtime_context().get_node_id(), "gpu_ids": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    trial = node | {"trial_epochs": config.epochs, "resumed_from": resumed_from}
    for metrics, save in epochs:
        metrics = metrics | trial
        if save is None:
            # Reported so the searcher learns the region is bad; no checkpoint, and the trial ends here.
            tune.report(metrics | {METRIC: math.nan, "val_loss": math.nan})
            return
        with tempfile.TemporaryDirectory() as directory:
            save(directory, metrics)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def train_mlp(tune_config: dict[str, Any], splits: Splits, max_epochs: int, cpus_per_trial: int = 1,
              budget: TrialBudget | None = None) -> None:  # fmt: skip
    """Train one sampled config, resuming from Tune's checkpoint after a crash or restore."""
    # TensorFlow only here: the stand-in shares trial_config, not TF.
    from tune_mlp.mlp.trainer import Trainer, configure_threads, grow_gpu_memory

    grow_gpu_memory()  # before any op: trials that share a GPU each take what they use
    configure_threads(cpus_per_trial)
    config = trial_config(tune_config, max_epochs, budget)
    resume = resumed_checkpoint()
    trainer = Trainer(config, splits, resume=resume)

    def save(directory: str, metrics: dict[str, Any]) -> None:
        save_checkpoint(directory, trainer.checkpoint(metrics))

    try:
        epochs = ((result.metrics(), None if result.diverged else save) for result in trainer.epochs())
        report_epochs(epochs, config, resume.epoch if resume else 0)
    finally:
        # Trials reuse actors: without this, every trial's data copies stay (its compiled programs are shared).
        trainer.close()


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

    def save(directory: str, metrics: dict[str, Any]) -> None:  # what load_checkpoint takes, with zero weights
        history.append(metrics)
        config.save(Path(directory, CONFIG_FILE))
        sizes = layer_sizes(config)
        shapes = [shape for n_in, n_out in zip(sizes[:-1], sizes[1:]) for shape in ((n_in, n_out), (n_out,))]
        zeros = {name: np.zeros(shape, np.float32) for name, shape in zip(weight_names(len(shapes)), shapes)}
        np.savez_compressed(Path(directory, WEIGHTS_FILE), **zeros)
        state = {"epoch": metrics["epoch"], "metrics": metrics, "history": history}
        Path(directory, STATE_FILE).write_text(json.dumps(state) + "\n")

    report_epochs(epochs(), config, len(history))


def standin_sizes(config: TrainConfig) -> tuple[int, int]:
    """The train and validation sizes the stand-in pretends to have, for a time budget: Fashion-MNIST's 60,000."""
    n_val = int(round(60_000 * config.val_fraction))
    return 60_000 - n_val, n_val
