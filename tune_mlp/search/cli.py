"""Hyperparameter search: HyperOpt (TPE) proposes, ASHA stops poor trials, Ray runs them in parallel.

    python -m tune_mlp.search --samples 20
    python -m tune_mlp.search --smoke-test --no_wandb        # two tiny trials, under a minute
    python -m tune_mlp.search --resume --name NAME           # continue an interrupted experiment
    python -m tune_mlp.search --time-budget 10m              # the whole search ends within 10 minutes
    python -m tune_mlp.search --name NAME --samples 40       # 20 more trials for a finished 20-trial search

Each trial reports every epoch with a checkpoint (``tune_mlp.train``'s format) to ``STORAGE/NAME/``;
``python -m analysis STORAGE/NAME`` turns that into a report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence

from tune_mlp import storage
from tune_mlp.cli import add_dataclass_arguments, dataclass_from_args, report_user_errors
from tune_mlp.records import BEST_FILE, SearchRecord
from tune_mlp.search.lock import driver_lock
from tune_mlp.search.plan import SearchOptions, SearchPlan, describe_plan, experiment_name, format_duration, search_plan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tune_mlp.search",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_arguments(parser, SearchOptions, "search (SearchOptions)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    attached: list[str] = []  # --time-budget -5m as --time-budget=-5m: argparse takes -5m for a flag; ours names it
    for arg in argv:
        if attached and attached[-1] in ("--time-budget", "--time_budget") and arg.startswith("-"):
            attached[-1] = f"{attached[-1]}={arg}"
        else:
            attached.append(arg)
    options = dataclass_from_args(parser, parser.parse_args(attached), SearchOptions)
    return report_user_errors(lambda: _run(options, argv))


def _run(options: SearchOptions, argv: Sequence[str]) -> int:
    plan = search_plan(options)  # bad flags or a bad sweep file stop here, in one line, before Ray and TensorFlow load
    if options.dry_run:
        print(describe_plan(plan))
        return 0
    # Ray, TensorFlow and HyperOpt load in ~5 s: only now that the flags and the file are known good.
    from tune_mlp.cluster.job import is_job_server, submit_search

    if is_job_server(options.address):  # a job server, not a Ray node: run there as a Ray job
        submit_search(options, argv)
        return 0
    storage.check_writable(options.storage_path)
    options = dataclasses.replace(options, name=experiment_name(options))
    with driver_lock(storage.storage_root(options.storage_path), options.name):  # one driver per experiment
        return _search_and_report(dataclasses.replace(plan, options=options))


def _search_and_report(plan: SearchPlan) -> int:
    from tune_mlp.search.results import experiment_uri, search_root
    from tune_mlp.search.tuner import run_search, write_best

    results = run_search(plan)
    best = write_best(results)
    root = search_root(experiment_uri(results))
    summary = json.loads(storage.read_text(root, BEST_FILE))
    record = SearchRecord.load(root) or SearchRecord()
    budget = summary.get("ended_by") == "time budget"
    ended = f"; the time budget ({format_duration(summary['time_budget_s'])}) ended the search" if budget else ""
    print(
        f"\nsearch: {record.describe()}\n"
        f"best trial {best.trial_id} (epoch {best.epoch}): {best.metric} {best.score:.4f}\n"
        f"config: {json.dumps(best.config, sort_keys=True, default=str)}\n"
        f"best checkpoint: {best.checkpoint}\n"
        f"{summary['trials']} trials ran, {summary['errored_trials']} errored{ended}; "
        f"report: python -m analysis {root}"
    )
    if summary.get("ended_by") is None:  # Ctrl-C: Tune saved the state; say how to go on
        name = root.rstrip("/").rsplit("/", 1)[-1]
        of_asked = "" if plan.until_budget else f" of {plan.trials}"  # a budget without a count asked for no number
        print(
            f"interrupted with {summary['trials']}{of_asked} trials done; continue with: "
            f"python -m tune_mlp.search --name {name} --storage-path {plan.options.storage_path} [same flags]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
