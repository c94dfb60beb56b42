"""One training run of the study's MLP.

    python -m tune_mlp.train --epochs 10 --batch_size 64 --weight_decay 0.0005 --no_wandb

Writes ``OUTPUT/metrics.json`` (per-epoch history, best validation and test scores) and
``OUTPUT/checkpoint/`` (the best-validation epoch); ``OUTPUT/last_checkpoint/`` lets
``--resume`` continue an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune_mlp.cli import CompactHelpFormatter, add_flag, add_train_arguments, config_from_args, report_user_errors
from tune_mlp.config import METRIC, TrainConfig

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


def run_training(config: TrainConfig, options: RunOptions, splits: Any | None = None) -> dict[str, Any]:
    """Train, keep the best-validation checkpoint, score it once on the test set, write metrics.json."""
    from tune_mlp.checkpoint import load_checkpoint, save_checkpoint
    from tune_mlp.data import load_splits
    from tune_mlp.evaluate import evaluate_weights
    from tune_mlp.trainer import Trainer

    splits = splits or load_splits(config.dataset, options.data_dir, config.val_fraction, config.seed)
    output = options.output
    resume = None
    if options.resume and (output / LAST_DIR).is_dir():
        resume = load_checkpoint(output / LAST_DIR)
        config = resume.config  # a resumed run keeps its own hyperparameters
    trainer = Trainer(config, splits, resume=resume)
    best = max(trainer.history, key=lambda m: m[METRIC], default=None)
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
        if best is None or metrics[METRIC] > best[METRIC]:
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
        summary |= {
            "best_epoch": best["epoch"],
            "best_val_accuracy": best[METRIC],
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "checkpoint": str(output / BEST_DIR),
        }
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
    from tqdm import tqdm

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
    from tune_mlp.wandb_setup import configure_wandb_mode

    configure_wandb_mode(f"{options.output}/wandb/offline-run-*")
    import wandb

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tune_mlp.train",
        description="Train the MLP once and score its best epoch on the test set.",
        formatter_class=CompactHelpFormatter,
    )
    add_train_arguments(parser)
    add_flag(
        parser,
        "data-dir",
        default=None,
        help="folder with the IDX files (else $TUNE_MLP_DATA_DIR, Debian, Keras cache)",
    )
    add_flag(parser, "output", default=None, help="run folder (default: runs/train-<time>)")
    add_flag(parser, "resume", action="store_true", help="continue the run in --output from its last checkpoint")
    add_flag(parser, "no_wandb", action="store_true", help="do not log to W&B")
    add_flag(parser, "wandb_project", default="tune_mlp", help="W&B project (default: %(default)s)")
    add_flag(parser, "wandb_entity", default=None, help="W&B entity (team or user; default: your default entity)")
    add_flag(parser, "no_progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(parser, args)
    if args.resume and not args.output:
        parser.error("argument --resume: needs --output, the run folder to continue")
    output = Path(args.output or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}")
    options = RunOptions(
        output=output,
        data_dir=args.data_dir,
        resume=args.resume,
        progress=not args.no_progress,
        wandb_project=None if args.no_wandb else args.wandb_project,
        wandb_entity=args.wandb_entity,
    )
    return report_user_errors(lambda: _train_and_report(config, options))


def _train_and_report(config: TrainConfig, options: RunOptions) -> int:
    summary = run_training(config, options)
    output = options.output
    if summary["status"] == "diverged":
        epoch = summary["history"][-1]["epoch"]
        print(
            f"training diverged at epoch {epoch} (loss is NaN or infinite); try a lower --learning_rate",
            file=sys.stderr,
        )
        return 1
    print(
        f"best epoch {summary['best_epoch']}: val_accuracy {summary['best_val_accuracy']:.4f}, "
        f"test_accuracy {summary['test_accuracy']:.4f}, {summary['samples_per_second']:,.0f} samples/s\n"
        f"wrote {output / METRICS_FILE} and {output / BEST_DIR}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
