"""One training run of the study's MLP.

    python -m tune_mlp.train --epochs 10 --batch_size 64 --weight_decay 0.0005 --no_wandb

Writes ``OUTPUT/metrics.json`` (per-epoch history, best validation and test scores) and
``OUTPUT/checkpoint/`` (the best-validation epoch); ``OUTPUT/last_checkpoint/`` lets
``--resume`` continue an interrupted run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tune_mlp.cli import add_flag, add_train_arguments, config_from_args, report_user_errors
from tune_mlp.config import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tune_mlp.train",
        description="Train the MLP once and score its best epoch on the test set.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    # TensorFlow loads in seconds: imported after argparse so --help and flag errors are instant.
    from tune_mlp.mlp.training import RunOptions

    options = RunOptions(
        output=output,
        data_dir=args.data_dir,
        resume=args.resume,
        progress=not args.no_progress,
        wandb_project=None if args.no_wandb else args.wandb_project,
        wandb_entity=args.wandb_entity,
    )
    return report_user_errors(lambda: _train_and_report(config, options))


def _train_and_report(config: TrainConfig, options) -> int:
    from tune_mlp.mlp.training import BEST_DIR, METRICS_FILE, run_training

    summary = run_training(config, options)
    output = options.output
    if summary["status"] == "diverged":
        epoch = summary["history"][-1]["epoch"]
        print(
            f"training diverged at epoch {epoch} (loss is NaN or infinite); try a lower --learning_rate",
            file=sys.stderr,
        )
        return 1
    best = summary["best"]
    print(
        f"best epoch {best['epoch']}: {best['metric']} {best['score']:.4f}, "
        f"test_accuracy {best['test_accuracy']:.4f}, {summary['samples_per_second']:,.0f} samples/s\n"
        f"wrote {output / METRICS_FILE} and {output / BEST_DIR}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
