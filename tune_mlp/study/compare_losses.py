"""The study's loss experiment: the same network trained with cross-entropy and with MSE.

    python -m tune_mlp.study.compare_losses --epochs 10 --out reports/compare_losses

Every training flag of ``python -m tune_mlp.train`` applies to both runs (except ``--loss``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.plots_eval import loss_comparison
from analysis.report import Section, write_report
from tune_mlp.cli import add_train_arguments, config_from_args
from tune_mlp.data import load_splits
from tune_mlp.mlp.training import RunOptions, run_training
from tune_mlp.study.cli import run_and_print, study_parser

LOSSES = ("cross_entropy", "mse")
WHY = (
    "Why cross-entropy is the better default: with a softmax output its gradient with respect to the logits "
    "is simply `p - y`, large whenever the prediction is wrong. MSE on the softmax probabilities multiplies "
    "that error by the softmax's own slope `p(1 - p)`, which vanishes exactly when the network is confidently "
    "wrong, so the worst mistakes learn slowest. The gap is widest where learning is slow anyway (plain SGD, "
    "small steps, saturating sigmoid units); Adam rescales every gradient and narrows it."
)


def compare_losses(config: Any, out: Path, data_dir: str | None = None, progress: bool = True) -> dict[str, Any]:
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed)
    runs = {
        loss: run_training(replace(config, loss=loss), RunOptions(out / loss, progress=progress), splits)
        for loss in LOSSES
    }
    histories = {loss: pd.DataFrame(run["history"]) for loss, run in runs.items()}
    figure = loss_comparison(histories, out / "loss_comparison.png")
    results = {loss: _scores(run["best"]) for loss, run in runs.items()}
    (out / "results.json").write_text(json.dumps({"config": config.to_dict(), "results": results}, indent=2) + "\n")

    ce, mse = results["cross_entropy"], results["mse"]
    gap = 100 * (ce["test_accuracy"] - mse["test_accuracy"])
    verdict = f"is {gap:.1f} points ahead of" if gap > 0 else f"is {-gap:.1f} points behind"
    text = (
        f"The same network ({config.num_layers}×{config.hidden_size} {config.activation}, {config.optimizer} "
        f"lr {config.learning_rate}, batch {config.batch_size}, {config.epochs} epochs) trained twice. "
        f"Cross-entropy reaches test accuracy **{ce['test_accuracy']:.4f}**, MSE **{mse['test_accuracy']:.4f}**: "
        f"here cross-entropy {verdict} MSE.\n\n{WHY}"
    )
    write_report(
        out,
        "Cross-entropy vs MSE",
        [Section("Cross-entropy vs MSE", text, pd.DataFrame(results).T.rename_axis("loss"), [figure])],
    )
    return results


def _scores(best: dict[str, Any]) -> dict[str, Any]:
    return {"best_val_accuracy": best["score"], "test_accuracy": best["test_accuracy"],
            "test_loss": best["test_loss"], "best_epoch": best["epoch"]}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = study_parser("python -m tune_mlp.study.compare_losses", __doc__, "reports/compare_losses")
    add_train_arguments(parser, skip=("loss",))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(parser, args)
    out = Path(args.out)
    return run_and_print(
        lambda: compare_losses(config, out, args.data_dir, not args.no_progress),
        out,
        lambda loss, r: f"{loss:>13}: test_accuracy {r['test_accuracy']:.4f}  best val {r['best_val_accuracy']:.4f}",
    )


if __name__ == "__main__":
    sys.exit(main())
