"""What the study's commands share: their common flags and the way they print their results."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tune_mlp.cli import add_flag, report_user_errors

Results = dict[str, dict[str, Any]]


def study_parser(
    prog: str, doc: str, out: str, data_help: str = "folder with the IDX files"
) -> argparse.ArgumentParser:
    """A parser with ``--out`` (default ``out``), ``--data-dir`` and ``--no-progress``; the module adds the rest."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    add_flag(parser, "out", default=out, help="output folder (default: %(default)s)")
    add_flag(parser, "data-dir", default=None, help=data_help)
    add_flag(parser, "no_progress", action="store_true", help="no progress bars")
    return parser


def run_and_print(run: Callable[[], Results], out: Path, line: Callable[[str, dict[str, Any]], str]) -> int:
    """Run the experiment, print one line per result and where the report is; bad input is one error line."""

    def work() -> int:
        for name, result in run().items():
            print(line(name, result))
        print(f"wrote {out / 'report.md'}")
        return 0

    return report_user_errors(work)
