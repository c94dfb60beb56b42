"""Report on a search: the best epoch of all trials, scored on the test set, with pictures.

python -m analysis ray_results/NAME [--out DIR]
python -m analysis runs/train-NAME | CHECKPOINT | EXPORT [--dataset mnist|fashion_mnist] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tune_mlp import storage
from tune_mlp.cli import add_flag, report_user_errors
from tune_mlp.config import DATASETS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "experiment", help="search folder (python -m tune_mlp.search), or a tune_mlp.train output, checkpoint or export"
    )
    add_flag(parser, "out", default=None, help="output folder (default: EXPERIMENT/analysis; reports/NAME for a URI)")
    add_flag(parser, "data-dir", default=None, help="folder with the IDX files")
    add_flag(parser, "dataset", choices=DATASETS, default=None, help="score a single model on this data set")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    out = Path(args.out) if args.out else default_out(args.experiment)

    def run() -> int:
        if storage.is_experiment(args.experiment):
            return _analyze_and_report(args.experiment, out, args.data_dir)
        return _report_on_model(args.experiment, out, args.data_dir, args.dataset)  # one model, not a search

    return report_user_errors(run)


def default_out(experiment: str) -> Path:
    """EXPERIMENT/analysis, or for a search in object storage reports/NAME here (the report is local files)."""
    if storage.is_uri(experiment):
        return Path("reports", experiment.rstrip("/").rsplit("/", 1)[-1])
    return Path(experiment) / "analysis"


def _report_on_model(path: str, out: Path, data_dir: str | None, dataset: str | None) -> int:
    from tune_mlp.deploy.model_source import resolve_model

    resolve_model(path)  # a path that is no model fails here, before TensorFlow is imported (and logs)
    from analysis.model_report import analyze_model

    summary = analyze_model(path, out, data_dir, dataset)
    print(
        f"{summary['model']['kind']} {path} on {summary['dataset']}: test_accuracy {summary['test_accuracy']:.4f}\n"
        f"wrote {out / 'summary.json'}, {out / 'report.md'}, {out / 'report.html'}"
    )
    return 0


def _analyze_and_report(experiment_dir: str, out: Path, data_dir: str | None) -> int:
    from tune_mlp.mlp.checkpoint import load_checkpoint
    from tune_mlp.search.results import load_experiment

    # Before TensorFlow loads (analysis.analyze): a wrong folder or a damaged checkpoint is just one error line.
    experiment = load_experiment(experiment_dir)
    load_checkpoint(experiment.best.checkpoint)
    from analysis.analyze import analyze

    best = analyze(experiment, out, data_dir)["best"]
    print(
        f"best trial {best['trial_id']} epoch {best['epoch']}: {best['metric']} "
        f"{best['score']:.4f}, test_accuracy {best['test_accuracy']:.4f}\n"
        f"wrote {out / 'summary.json'}, {out / 'report.md'}, {out / 'report.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
