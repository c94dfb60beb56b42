"""One training run as a library call: train, keep the best-validation checkpoint, score it once on test.

``python -m tune_mlp.train`` and the study's experiments (``tune_mlp.study``) both call ``run_training``.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tune_mlp.config import METRIC, MODE, TrainConfig, is_better
from tune_mlp.data import Splits, load_splits
from tune_mlp.mlp.checkpoint import load_checkpoint, save_checkpoint
from tune_mlp.records import BestResult
from tune_mlp.wandb_mode import configure_wandb_mode

BEST_DIR = "checkpoint"
LAST_DIR = "last_checkpoint"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunOptions:
    """Where a run reads and writes; not hyperparameters, so not in TrainConfig."""

    output: Path
    data_dir: str | None = None
    resume: bool = False
    progress: bool = True
    wandb_project: str | None = None  # None: no W&B
    wandb_entity: str | None = None  # None: the W&B default entity


def run_training(config: TrainConfig, options: RunOptions, splits: Splits | None = None) -> dict[str, Any]:
    """Train, keep the best-validation checkpoint, score it once on the test set, write metrics.json."""
    splits = splits or load_splits(config.dataset, options.data_dir, config.val_fraction, config.split_seed)
    output = options.output
    resume = None
    if options.resume and (output / LAST_DIR).is_dir():
        resume = load_checkpoint(output / LAST_DIR)
        config = resume.config  # a resumed run keeps its own hyperparameters
    # TensorFlow (seconds to load) only once the data and the checkpoint are read: a missing folder or a damaged
    # checkpoint is reported at once, and the command-line tools that call this start fast.
    from tune_mlp.mlp.evaluate import evaluate_weights
    from tune_mlp.mlp.trainer import Trainer

    trainer = Trainer(config, splits, resume=resume)
    best: dict[str, Any] | None = None
    for metrics in trainer.history:  # a resumed run's earlier epochs compete too
        best = metrics if is_better(metrics[METRIC], best and best[METRIC]) else best
    log = _wandb_logger(config, options)
    status = "completed"
    for result in trainer.epochs((lambda: _epoch_with_bar(trainer)) if options.progress else None):
        metrics = result.metrics()
        log(metrics)
        if result.diverged:
            status = "diverged"
            break
        checkpoint = trainer.checkpoint()  # one copy of weights and optimizer state, written once or twice
        save_checkpoint(output / LAST_DIR, checkpoint)
        if is_better(metrics[METRIC], best and best[METRIC]):
            best = metrics
            save_checkpoint(output / BEST_DIR, checkpoint)
    summary: dict[str, Any] = {
        "status": status,
        "config": config.to_dict(),
        "history": trainer.history,
        "samples_per_second": _steady_speed(trainer.history),
    }
    if best is not None:
        checkpoint = load_checkpoint(output / BEST_DIR)
        test = evaluate_weights(config, checkpoint.weights, splits.x_test, splits.y_test)
        summary["best"] = BestResult(
            METRIC, MODE, best[METRIC], best["epoch"], str(output / BEST_DIR), config.to_dict(),
            test_accuracy=test.accuracy, test_loss=test.loss,
        ).to_dict()  # fmt: skip
        log({"test_accuracy": test.accuracy, "test_loss": test.loss})
    log(None)
    output.mkdir(parents=True, exist_ok=True)
    (output / METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _steady_speed(history: Sequence[dict[str, Any]]) -> float:
    """Median samples/s, so the first epoch's one-off compilation does not skew it."""
    speeds = [m["samples_per_second"] for m in history[1:] or history]
    return statistics.median(speeds) if speeds else 0.0


def _epoch_with_bar(trainer: Any) -> Any:
    """One epoch under its own progress bar, which moves ~20 times while the epoch trains."""
    label = f"epoch {trainer.epoch + 1}/{trainer.config.epochs}"
    with tqdm(total=trainer.steps_per_epoch, desc=label, unit="batch", file=sys.stderr, leave=True) as bar:
        result = trainer.train_epoch(chunks=20, on_chunk=bar.update)
        bar.set_postfix(
            loss=f"{result.train_loss:.4f}",
            val_acc=f"{result.val_accuracy:.4f}",
            samples_s=f"{result.samples_per_second:,.0f}",
        )
    return result


def _wandb_logger(config: TrainConfig, options: RunOptions) -> Callable[[dict[str, Any] | None], None]:
    """A log function (None finishes the run); a no-op without W&B."""
    if not options.wandb_project:
        return lambda metrics: None
    configure_wandb_mode(f"{options.output}/wandb/offline-run-*")
    import wandb  # ~1 s to import, and only when W&B is on

    options.output.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=options.wandb_project, entity=options.wandb_entity, config=config.to_dict(), dir=str(options.output)
    )

    def log(metrics: dict[str, Any] | None) -> None:
        if metrics is None:
            run.finish()
        else:
            run.log(metrics)

    return log
