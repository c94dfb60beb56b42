"""Hyperparameter search: HyperOpt (TPE) proposes, ASHA stops poor trials, Ray runs them in parallel.

    python -m tune_mlp.search --samples 20
    python -m tune_mlp.search --smoke-test --no_wandb        # two tiny trials, under a minute
    python -m tune_mlp.search --resume --name NAME           # continue an interrupted experiment

Each trial reports every epoch with a checkpoint (``tune_mlp.train``'s format) to
``STORAGE/NAME/``; ``python -m analysis STORAGE/NAME`` turns that into a report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tune_mlp.cli import add_flag, report_user_errors
from tune_mlp.config import METRIC, MODE

SMOKE_TRAIN_EXAMPLES = 3000


@dataclass(frozen=True)
class SearchOptions:
    """How to search; what to train is in the space file and TrainConfig."""

    samples: int = 20  # trials
    space: str = "default"  # a file or a name in search_spaces/
    max_epochs: int = 30  # ASHA's max_t and the epoch budget of a trial
    grace_period: int = 3  # epochs before ASHA may stop a trial
    reduction_factor: int = 3  # ASHA keeps 1/reduction_factor at each rung
    cpus_per_trial: int = 1
    concurrency: int | None = None  # trials at once (default: CPUs // cpus_per_trial)
    initial_points: int = 6  # random trials before TPE takes over
    seed: int = 0
    storage_path: str = "./ray_results"
    name: str | None = None  # default: <space>-<time>
    resume: bool = False
    address: str | None = None  # an existing Ray cluster; default: a local one
    wandb_project: str | None = "tune_mlp"  # None: no W&B
    data_dir: str | None = None
    smoke_test: bool = False
    max_failures: int = 2  # retries of a crashed trial, from its last checkpoint
    verbose: bool = False


def storage_root(options: SearchOptions) -> str:
    """Ray wants an absolute local path or a URI (s3://, gs://, a shared NFS path)."""
    if "://" in options.storage_path:
        return options.storage_path.rstrip("/")
    return str(Path(options.storage_path).expanduser().resolve())


def experiment_name(options: SearchOptions) -> str:
    """``--name``; with ``--resume`` alone, the newest experiment in the storage path."""
    if options.name:
        return options.name
    if options.resume:
        if "://" in options.storage_path:
            raise SystemExit("error: --resume without --name needs a local --storage-path; with a URI give --name")
        root = Path(storage_root(options))
        states = sorted(root.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
        if not states:
            raise SystemExit(f"error: --resume: no experiment to resume in {root}")
        return states[-1].parent.name
    space = Path(options.space).stem
    return f"{space}{'-smoke' if options.smoke_test else ''}-{time.strftime('%Y%m%d-%H%M%S')}"


def _init_ray(options: SearchOptions) -> None:
    import ray

    quiet = {} if options.verbose else {"logging_level": logging.WARNING, "log_to_driver": False}
    address = options.address or os.environ.get("RAY_ADDRESS")
    # W&B's logging actors run in Ray workers, which take their environment from the job, not
    # from this process after ray.init: the mode (never the key) travels in the runtime env.
    wandb_mode = os.environ.get("WANDB_MODE")
    job_env = {"runtime_env": {"env_vars": {"WANDB_MODE": wandb_mode}}} if wandb_mode else {}
    if ray.is_initialized():
        pass  # a caller (a test, a notebook) already chose the cluster
    elif address:
        ray.init(address=address, **quiet, **job_env)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet, **job_env)
    alive = [node for node in ray.nodes() if node.get("Alive")]
    if len(alive) > 1 and "://" not in options.storage_path:
        print(
            f"note: {len(alive)} Ray nodes share this run, and --storage-path {options.storage_path} is a local "
            "path: every node must see it at the same place (an NFS mount), or use a URI such as "
            "s3://bucket/ray_results or gs://bucket/ray_results.",
            file=sys.stderr,
        )


def _tuner(
    options: SearchOptions, name: str, trainable: Any, space: dict[str, Any], start_points: list[dict[str, Any]]
):
    """A new Tuner, or the interrupted one of the same name restored (no finished trial re-runs)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    from tune_mlp.search_space import sampled_keys

    path = f"{storage_root(options)}/{name}"
    if tune.Tuner.can_restore(path):
        print(f"resuming experiment {path}", flush=True)
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    if options.resume:
        raise SystemExit(f"error: --resume: {path} is not a Tune experiment that can be resumed")
    concurrency = options.concurrency or max(1, int(_cluster_cpus() // options.cpus_per_trial))
    searcher = None  # HyperOpt cannot sample a space of constants: then Tune repeats the one config
    if sampled_keys(space):
        searcher = ConcurrencyLimiter(
            HyperOptSearch(
                points_to_evaluate=start_points or None,
                n_initial_points=min(options.initial_points, options.samples),
                random_state_seed=options.seed,
            ),
            max_concurrent=concurrency,
        )
    scheduler = ASHAScheduler(
        time_attr="epoch",
        max_t=options.max_epochs,
        grace_period=min(options.grace_period, options.max_epochs),
        reduction_factor=options.reduction_factor,
    )
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            search_alg=searcher,
            max_concurrent_trials=None if searcher else concurrency,
            scheduler=scheduler,
            num_samples=options.samples,
            reuse_actors=True,  # keep TensorFlow imported and warm between trials
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_root(options),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=3, checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE
            ),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=_callbacks(options, name),
            progress_reporter=_reporter(space, options),
            verbose=1,
        ),
    )


def _trial_dirname(trial: Any) -> str:
    """Short folder names: Tune's default spells out the whole config and overflows paths."""
    return f"trial_{trial.trial_id}"


def _cluster_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


def _callbacks(options: SearchOptions, name: str) -> list[Any]:
    if not options.wandb_project:
        return []
    from tune_mlp.wandb_setup import wandb_logger_callback

    return [wandb_logger_callback(project=options.wandb_project, group=name, excludes=["node_id"])]


def _reporter(space: dict[str, Any], options: SearchOptions):
    from ray.tune import CLIReporter

    from tune_mlp.search_space import sampled_keys

    return CLIReporter(
        parameter_columns=sampled_keys(space)[:8],
        metric_columns={METRIC: "val_acc", "epoch": "epoch", "time_total_s": "secs"},
        max_report_frequency=5 if options.smoke_test else 30,
        sort_by_metric=True,  # by TuneConfig's metric and mode
        max_progress_rows=25,
    )


def run_search(options: SearchOptions):
    """Run (or resume) an experiment and return its ResultGrid; errors in inputs stop it before Ray starts."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table, trimmed by our CLIReporter
    # Keeping the best 3 checkpoints forces a state snapshot per epoch (~0.5-1 s of driver time, counted by
    # scripts/bench_search.py); Ray warns about it on every result, which buries the progress table.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not options.verbose:
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")  # read when ray.tune is first imported
    from ray import tune

    from tune_mlp.data import load_splits
    from tune_mlp.driver_lock import driver_lock
    from tune_mlp.search_space import load_space, sampled_keys

    space_file = load_space(options.space)
    space = space_file.tune_space()
    start_points = space_file.points_to_evaluate
    if options.smoke_test:
        options = SearchOptions(
            **(asdict(options) | {"samples": 2, "max_epochs": min(options.max_epochs, 2), "grace_period": 1})
        )
        space = {key: value for key, value in space.items() if key != "epochs"}
        start_points = []
    fixed = {key: value for key, value in space.items() if key not in sampled_keys(space)}
    splits = load_splits(
        fixed.get("dataset", "fashion_mnist"),
        options.data_dir,
        fixed.get("val_fraction", 0.1),
        options.seed,
        limit=SMOKE_TRAIN_EXAMPLES if options.smoke_test else None,
    )
    name = experiment_name(options)
    if options.wandb_project:
        from tune_mlp.wandb_setup import configure_wandb_mode

        configure_wandb_mode(f"{storage_root(options)}/{name}/trial_*/wandb/offline-run-*")
    with driver_lock(storage_root(options), name):  # one driver per experiment, checked before TF loads
        from tune_mlp.trainable import train_mlp

        _init_ray(options)
        trainable = tune.with_resources(
            tune.with_parameters(
                train_mlp, splits=splits, max_epochs=options.max_epochs, cpus_per_trial=options.cpus_per_trial
            ),
            {"cpu": options.cpus_per_trial},
        )
        tuner = _tuner(options, name, trainable, space, start_points)
        return tuner.fit()


def summarize(results) -> dict[str, Any]:
    """The best epoch of the experiment: what the driver prints and writes to best.json."""
    from tune_mlp.results import best_checkpoint

    best = best_checkpoint(results)
    return {
        "experiment": results.experiment_path,
        "trials": len(results),
        "errored_trials": len(results.errors),
        METRIC: best.score,
        "epoch": best.metrics.get("epoch"),
        "trial_id": best.trial_id,
        "config": best.config,
        "checkpoint": best.path,
    }


def _write_best(experiment: str, text: str) -> None:
    """best.json next to the experiment, on a local/NFS path or a URI (s3://, gs://) alike."""
    if "://" not in experiment:
        Path(experiment, "best.json").write_text(text)
        return
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(experiment)
    with fs.open_output_stream(f"{path.rstrip('/')}/best.json") as out:
        out.write(text.encode())


def build_parser() -> argparse.ArgumentParser:
    defaults = SearchOptions()
    parser = argparse.ArgumentParser(
        prog="python -m tune_mlp.search",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_flag(parser, "samples", type=int, default=defaults.samples, help="trials to run (default: %(default)s)")
    add_flag(
        parser,
        "space",
        default=defaults.space,
        help="search space: file or name in search_spaces/ (default: %(default)s)",
    )
    add_flag(
        parser,
        "max-epochs",
        type=int,
        default=defaults.max_epochs,
        help="ASHA max_t, epochs per trial at most (default: %(default)s)",
    )
    add_flag(
        parser,
        "grace-period",
        type=int,
        default=defaults.grace_period,
        help="ASHA grace period in epochs (default: %(default)s)",
    )
    add_flag(
        parser,
        "reduction-factor",
        type=int,
        default=defaults.reduction_factor,
        help="ASHA reduction factor (default: %(default)s)",
    )
    add_flag(
        parser,
        "cpus-per-trial",
        type=int,
        default=defaults.cpus_per_trial,
        help="CPUs per trial (default: %(default)s)",
    )
    add_flag(
        parser, "concurrency", type=int, default=None, help="trials at once (default: cluster CPUs / cpus-per-trial)"
    )
    add_flag(
        parser,
        "initial-points",
        type=int,
        default=defaults.initial_points,
        help="random trials before TPE (default: %(default)s)",
    )
    add_flag(
        parser,
        "max-failures",
        type=int,
        default=defaults.max_failures,
        help="retries of a crashed trial (default: %(default)s)",
    )
    add_flag(
        parser, "seed", type=int, default=defaults.seed, help="searcher and data-split seed (default: %(default)s)"
    )
    add_flag(
        parser,
        "storage-path",
        default=defaults.storage_path,
        help="results root: a path or s3://, gs:// URI (default: %(default)s)",
    )
    add_flag(parser, "name", default=None, help="experiment name; an existing one is resumed (default: <space>-<time>)")
    add_flag(parser, "resume", action="store_true", help="continue --name, or the newest experiment in --storage-path")
    add_flag(
        parser,
        "address",
        default=None,
        help="Ray cluster: auto, HOST:6379, ray://HOST:10001; a job server http://HOST:8265 submits a job "
        "(default: start a local Ray)",
    )
    add_flag(parser, "wandb-project", default="tune_mlp", help="W&B project (default: %(default)s)")
    add_flag(parser, "no_wandb", action="store_true", help="do not log to W&B")
    add_flag(parser, "data-dir", default=None, help="folder with the IDX files")
    add_flag(parser, "smoke-test", action="store_true", help="two trials, two epochs, a slice of the data")
    add_flag(parser, "verbose", action="store_true", help="show Ray's and the trials' logs")
    return parser


def options_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SearchOptions:
    for flag in ("samples", "max_epochs", "grace_period", "cpus_per_trial", "initial_points"):
        if getattr(args, flag) < 1:
            parser.error(f"argument --{flag.replace('_', '-')}: invalid value {getattr(args, flag)} (must be >= 1)")
    if args.reduction_factor < 2:
        parser.error(f"argument --reduction-factor: invalid value {args.reduction_factor} (must be >= 2)")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error(f"argument --concurrency: invalid value {args.concurrency} (must be >= 1)")
    if args.max_failures < 0:
        parser.error(f"argument --max-failures: invalid value {args.max_failures} (must be >= 0)")
    values = {key: value for key, value in vars(args).items() if key in SearchOptions.__dataclass_fields__}
    values["wandb_project"] = None if args.no_wandb else args.wandb_project
    return SearchOptions(**values)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = options_from_args(parser, args)
    from tune_mlp.job import is_job_server, submit_search

    if is_job_server(options.address):  # a job server, not a Ray node: run there as a Ray job
        command_line = sys.argv[1:] if argv is None else argv

        def submit() -> int:
            submit_search(options, command_line)
            return 0

        return report_user_errors(submit)
    return report_user_errors(lambda: _search_and_report(options))


def _search_and_report(options: SearchOptions) -> int:
    from tune_mlp.results import load_results

    results = run_search(options)
    summary = summarize(results)
    _write_best(summary["experiment"], json.dumps(summary, indent=2, default=str) + "\n")
    print(
        f"\nbest trial {summary['trial_id']} (epoch {summary['epoch']}): {METRIC} {summary[METRIC]:.4f}\n"
        f"config: {json.dumps(summary['config'], sort_keys=True, default=str)}\n"
        f"best checkpoint: {summary['checkpoint']}\n"
        f"{summary['trials']} trials, {summary['errored_trials']} errored; "
        f"report: python -m analysis {summary['experiment']}"
    )
    saved = load_results(summary["experiment"])  # what was persisted is what a resume starts from
    done = saved.num_terminated + saved.num_errors
    if done < options.samples:  # Ctrl-C: Tune saved the state; say how to go on
        name = summary["experiment"].rstrip("/").rsplit("/", 1)[-1]
        print(
            f"interrupted with {done} of {options.samples} trials done; continue with: "
            f"python -m tune_mlp.search --name {name} --storage-path {options.storage_path} [same flags]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
