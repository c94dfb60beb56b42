"""The Ray Tune function trainable: the ``tune_mlp.mlp.trainer`` loop, one report and checkpoint per epoch."""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import ray
from ray import tune

from tune_mlp.config import METRIC, TrainConfig
from tune_mlp.data import Splits
from tune_mlp.mlp.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tune_mlp.search.budget import TrialBudget


def trial_config(tune_config: dict[str, Any], max_epochs: int, budget: TrialBudget | None = None) -> TrainConfig:
    """The sampled values over the defaults; ``epochs`` is ASHA's ``max_t`` unless the space samples it.

    Under a time budget a config slower than the typical one gets fewer epochs, so that its full run takes
    no more of the budget than a typical trial's (its cosine schedule then ends with its last epoch).
    """
    values = dict(tune_config)
    values["epochs"] = min(int(values.get("epochs", max_epochs)), max_epochs)
    config = TrainConfig.from_dict(values)
    if budget:
        config = dataclasses.replace(config, epochs=min(config.epochs, budget.epochs_for(config.to_dict(), max_epochs)))
    return config


def placement() -> dict[str, str]:
    """Where a trial runs, reported with each epoch: its Ray node and the GPUs Ray let it see."""
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "gpu_ids": os.environ.get("CUDA_VISIBLE_DEVICES", ""),  # set by Ray for a trial that asked for GPUs
    }


def resumed_checkpoint() -> Checkpoint | None:
    """The trial's own checkpoint when Tune retries or restores it (a crash, a lost node, --resume); else None."""
    checkpoint = tune.get_checkpoint()
    if not checkpoint:
        return None
    with checkpoint.as_directory() as directory:
        return load_checkpoint(directory)


# One epoch's metrics and how to write its checkpoint into a folder (None: the run diverged, nothing to keep).
Epoch = tuple[dict[str, Any], Callable[[str], Any] | None]


def report_epochs(epochs: Iterable[Epoch], config: TrainConfig, resumed_from: int) -> None:
    """The trainables' one loop: each epoch reported to Tune with its checkpoint; a diverged one ends the trial."""
    # The same for every epoch; resumed_from: the epoch this run of the trial started at (0, or its checkpoint's).
    trial = placement() | {"trial_epochs": config.epochs, "resumed_from": resumed_from}
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
    # TensorFlow only here: the stand-in trainable (tune_mlp.search.standin) shares trial_config, not TF.
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
