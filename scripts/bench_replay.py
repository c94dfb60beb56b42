"""Replay the searchers over recorded learning curves and external tables; print who finds the optimum.

    python scripts/bench_replay.py --quick                 # the study table alone, 2 and 8 workers (< 10 min)
    python scripts/bench_replay.py                         # study at 2 8 32 64 workers x 100 seeds, external 2 8 x 30
    python scripts/bench_replay.py --tables study --workers 2 --seeds 20 --searchers ours random

Prints per table a Markdown table (median final regret with a 95 % bootstrap interval, mean rank, anytime
regret, time to within 0.002 of the optimum, the random-search floor) and writes one PNG of anytime
regret per table to ``--plots``. The logic is in ``tune_mlp.replay.bench``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tune_mlp.cli import report_user_errors  # noqa: E402
from tune_mlp.errors import UserInputError  # noqa: E402
from tune_mlp.replay.bench import (  # noqa: E402
    curve_case,
    external_case,
    format_case,
    format_per_seed,
    plot_case,
    replay_case,
)
from tune_mlp.replay.peers import PEERS  # noqa: E402
from tune_mlp.replay.table import TABLES_DIR  # noqa: E402

SEARCHERS = ["ours", "ours-before", "ours@10", "random", "optuna", "optuna@6", "bohb", "bohb@10"]
QUICK = ["ours", "ours-before", "random", "optuna", "optuna@6", "bohb"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the study table at 2 and 8 workers, 30 seeds")
    parser.add_argument("--tables", nargs="+", default=None,
                        help="study, a table file, hpolib, hpobench, bench/dataset (default: all)")  # fmt: skip
    parser.add_argument("--space", default="study", help="the space of a curve table (default: study)")
    parser.add_argument("--table-file", type=Path, default=TABLES_DIR / "study.csv.gz", help="the study table")
    parser.add_argument("--partial", action="store_true", help="read a table still being made (its finished seeds)")
    parser.add_argument("--training-seed", type=int, default=None,
                        help="every trial trains with this seed of the table, as a real search does "
                        "(default: each trial draws one of the table's seeds)")  # fmt: skip
    parser.add_argument(
        "--per-seed",
        action="store_true",
        help="also print each replay's pick, to compare with real searches of the same --seed",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts (study: 2 8 32 64)")
    parser.add_argument("--external-workers", type=int, nargs="+", default=[2, 8], help="(default 2 8)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell (study 100, quick 30)")
    parser.add_argument("--external-seeds", type=int, default=30, help="seeds per external cell (default 30)")
    parser.add_argument(
        "--searchers",
        nargs="+",
        default=None,
        help=f"of {', '.join(PEERS)}; name@N: N start-up trials (default: {' '.join(SEARCHERS)})",
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1: the machine is shared)")
    parser.add_argument(
        "--store",
        default=None,
        help="a JSON-lines file of finished replays: read back, not replayed, so a stopped run resumes",
    )
    parser.add_argument("--plots", type=Path, default=None,
                        help="folder for the PNGs (default: docs/benchmarks; with --quick build/replay, so that "
                             "a quick look does not replace the full run's pictures)")  # fmt: skip
    args = parser.parse_args(argv)
    return report_user_errors(lambda: _run(args))  # a damaged table: one line, exit 2


def _run(args: argparse.Namespace) -> int:
    tables = args.tables or (["study"] if args.quick else ["study", "hpolib", "hpobench"])
    searchers = args.searchers or (QUICK if args.quick else SEARCHERS)
    unknown = [name for name in searchers if name.partition("@")[0] not in PEERS]
    if unknown:
        names = " ".join(unknown)
        raise UserInputError(f"--searchers {names}: not a replayed searcher; give some of {', '.join(PEERS)}")
    workers = args.workers or ([2, 8] if args.quick else [2, 8, 32, 64])
    seeds = list(range(args.seeds or (30 if args.quick else 100)))
    args.plots = args.plots or (ROOT / "build" / "replay" if args.quick else ROOT / "docs" / "benchmarks")
    args.plots.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"# replay: {' '.join(sys.argv[1:]) or '(defaults)'}\n", flush=True)
    for name in tables:
        for case, case_workers, case_seeds in _cases(name, args, workers, seeds):
            t0 = time.time()
            outcomes = replay_case(
                case,
                searchers,
                case_workers,
                case_seeds,
                jobs=args.jobs,
                store=args.store,
                progress=lambda line: print(line, flush=True),
            )
            print(format_case(case, outcomes, searchers, case_workers, case_seeds))
            if args.per_seed:
                print("\n" + format_per_seed(case, outcomes))
            if case.scheduler == "asha":  # a curve table: the surrogate's error, used or not
                from tune_mlp.replay.surrogate import holdout_error

                print("\n" + holdout_error(case.table, 1).line() + "; " + holdout_error(case.table, 5).line())
            png = args.plots / f"replay-{case.name}.png"
            plot_case(case, outcomes, searchers, case_workers, str(png))
            print(f"\n({len(outcomes)} replays in {time.time() - t0:.0f} s; {png})\n", flush=True)
    print(f"total {time.time() - started:.0f} s")
    return 0


def _cases(name: str, args: argparse.Namespace, workers: list[int], seeds: list[int]):
    if name in ("hpolib", "hpobench") or "/" in name and name.split("/")[0] in ("hpolib", "hpobench"):
        from tune_mlp.replay.external import external_names

        chosen = [(b, d) for b, d in external_names() if name in (b, f"{b}/{d}")]
        for bench, dataset in chosen:
            yield external_case(bench, dataset), args.external_workers, list(range(args.external_seeds))
        return
    path = args.table_file if name == "study" else Path(name)
    yield curve_case(str(path), args.space, partial=args.partial, training_seed=args.training_seed), workers, seeds


if __name__ == "__main__":
    raise SystemExit(main())
