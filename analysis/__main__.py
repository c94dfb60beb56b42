"""Report on a search: the best epoch of all trials, scored on the test set, with pictures.

python -m analysis ray_results/NAME [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tune_mlp.cli import add_flag


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="experiment folder written by python -m tune_mlp.search")
    add_flag(parser, "out", default=None, help="output folder (default: EXPERIMENT/analysis)")
    add_flag(parser, "data-dir", default=None, help="folder with the IDX files")
    args = parser.parse_args(argv)

    from analysis.analyze import analyze
    from tune_mlp.checkpoint import CheckpointError
    from tune_mlp.data import DatasetFormatError, DatasetNotFoundError
    from tune_mlp.results import ExperimentError

    out = Path(args.out) if args.out else Path(args.experiment) / "analysis"
    try:
        summary = analyze(args.experiment, out, args.data_dir)
    except (ExperimentError, CheckpointError, DatasetNotFoundError, DatasetFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"best trial {summary['best_trial']} epoch {summary['best_epoch']}: val_accuracy "
        f"{summary['val_accuracy']:.4f}, test_accuracy {summary['test_accuracy']:.4f}\n"
        f"wrote {out / 'summary.json'}, {out / 'report.md'}, {out / 'report.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
