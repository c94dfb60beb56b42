"""Hyperparameter search: HyperOpt (TPE) proposes, ASHA stops poor trials, Ray runs them in parallel.

    python -m tune_mlp.search --samples 20
    python -m tune_mlp.search --smoke-test --no_wandb        # two tiny trials, under a minute
    python -m tune_mlp.search --resume --name NAME           # continue an interrupted experiment
    python -m tune_mlp.search --time-budget 10m              # the whole search ends within 10 minutes
    python -m tune_mlp.search --name NAME --samples 40       # 20 more trials for a finished 20-trial search

Each trial reports every epoch with a checkpoint (``tune_mlp.train``'s format) to
``STORAGE/NAME/``; ``python -m analysis STORAGE/NAME`` turns that into a report.
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
from tune_mlp.search.budget import FULL_TRIAL_SHARE, format_duration, parse_duration
from tune_mlp.search.lock import driver_lock
from tune_mlp.search.options import (
    INITIAL_POINTS,
    STARTUP_MAX_SLOTS,
    SearchOptions,
    experiment_name,
    initial_points_for,
    search_plan,
)
from tune_mlp.search.peers import check_searcher
from tune_mlp.search.peers import describe as describe_searcher
from tune_mlp.search.sweep import SearchPlan, describe_plan


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
    options = dataclass_from_args(parser, parser.parse_args(_attach_values(argv)), SearchOptions)
    return report_user_errors(lambda: _run(options, argv))


def _attach_values(argv: list[str]) -> list[str]:
    """``--time-budget -5m`` -> ``--time-budget=-5m``: argparse takes -5m for a flag; the budget check names it."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("--time-budget", "--time_budget") and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _run(options: SearchOptions, argv: Sequence[str]) -> int:
    if options.time_budget:
        parse_duration(options.time_budget)  # a bad budget, like a bad sweep file, stops before anything loads
    plan = search_plan(options)  # a bad sweep file stops here, in one line, before Ray and TensorFlow load
    check_searcher(options, plan)
    if options.dry_run:
        if options.initial_points or options.concurrency:  # else the slots are the cluster's, unknown until Ray starts
            startup: int | str = initial_points_for(options.concurrency or 1, options.initial_points)
        else:
            startup = f"{INITIAL_POINTS} (above {STARTUP_MAX_SLOTS} slots: half the slots)"
        print(describe_plan(plan, startup, options.seed))
        at_once = options.concurrency or "as many as the cluster's CPUs and GPUs fit"
        print(f"per trial: cpus {options.cpus_per_trial}, gpus {options.gpus_per_trial:g}; trials at once: {at_once}")
        if options.searcher != "hyperopt" and plan.searcher == "hyperopt_tpe":
            print(f"searcher: --searcher {options.searcher} -> {describe_searcher(options.searcher, options.seed)}")
        if options.time_budget:
            share = f"{FULL_TRIAL_SHARE:.0%}"
            print(f"time budget: {options.time_budget}; max_t is fitted to it when the data is loaded "
                  f"(a full typical trial takes at most {share} of it), never above {plan.max_epochs}")  # fmt: skip
        return 0
    # Ray, TensorFlow and HyperOpt load in ~5 s: only now that the flags and the file are known good.
    from tune_mlp.cluster.job import is_job_server, submit_search

    if is_job_server(options.address):  # a job server, not a Ray node: run there as a Ray job
        submit_search(options, argv)
        return 0
    storage.check_writable(options.storage_path)
    options = dataclasses.replace(options, name=experiment_name(options))
    with driver_lock(storage.storage_root(options.storage_path), options.name):  # one driver per experiment
        return _search_and_report(options, plan)


def _search_and_report(options: SearchOptions, plan: SearchPlan) -> int:
    from tune_mlp.search.results import experiment_uri, search_root
    from tune_mlp.search.tuner import run_search, write_best

    results = run_search(options, plan)
    best = write_best(results)
    root = search_root(experiment_uri(results))
    summary = json.loads(storage.read_text(root, BEST_FILE))
    record = SearchRecord.load(root) or SearchRecord()
    ended = ""
    if summary.get("ended_by") == "time budget":
        ended = f"; the time budget ({format_duration(summary['time_budget_s'])}) ended the search"
    print(
        f"\nsearch: {record.describe()}\n"
        f"best trial {best.trial_id} (epoch {best.epoch}): {best.metric} {best.score:.4f}\n"
        f"config: {json.dumps(best.config, sort_keys=True, default=str)}\n"
        f"best checkpoint: {best.checkpoint}\n"
        f"{summary['trials']} trials ran, {summary['errored_trials']} errored{ended}; "
        f"report: python -m analysis {root}"
    )
    done, asked = summary["trials"], plan.trials
    if summary.get("ended_by") is None:  # Ctrl-C: Tune saved the state; say how to go on
        name = root.rstrip("/").rsplit("/", 1)[-1]
        of_asked = "" if plan.until_budget else f" of {asked}"  # a budget without a count asked for no number
        print(
            f"interrupted with {done}{of_asked} trials done; continue with: "
            f"python -m tune_mlp.search --name {name} --storage-path {options.storage_path} [same flags]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
