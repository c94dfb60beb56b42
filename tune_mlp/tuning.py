"""The search as a library: a Ray Tune experiment of HyperOpt (TPE) proposals, ASHA stops and our trainable.

``python -m tune_mlp.search`` parses flags into ``SearchOptions`` and calls ``run_search``; tests,
notebooks and the cluster job call it the same way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.hyperopt import HyperOptSearch

from tune_mlp import storage
from tune_mlp.config import METRIC, MODE, MODES, REPORTED_METRICS, TrainConfig, bounded, choice
from tune_mlp.data import load_splits
from tune_mlp.errors import UserInputError
from tune_mlp.records import BEST_FILE, SearchRecord
from tune_mlp.results import BestResult, best_result
from tune_mlp.search_space import SearchSpace, load_space, sampled_keys
from tune_mlp.trainable import train_mlp
from tune_mlp.wandb_setup import DEFAULT_PROJECT, configure_wandb_mode

SMOKE_TRAIN_EXAMPLES = 3000
DATA_KEYS = ("dataset", "val_fraction", "split_seed")  # one split for the whole search: trials must compare


@dataclass(frozen=True)
class SearchOptions:
    """How to search; what to train is in the space file and TrainConfig."""

    samples: int = bounded(20, 1)  # trials to run
    space: str = "default"  # search space: a W&B sweep file, or a name in search_spaces/
    max_epochs: int = bounded(30, 1)  # ASHA's max_t, the most epochs a trial trains
    grace_period: int = bounded(3, 1)  # epochs before ASHA may stop a trial
    reduction_factor: int = bounded(3, 2)  # ASHA keeps 1/reduction_factor of the trials at each rung
    cpus_per_trial: int = bounded(1, 1)  # CPUs (TensorFlow threads) per trial
    concurrency: int | None = bounded(None, 1)  # trials at once (default: cluster CPUs / cpus-per-trial)
    initial_points: int = bounded(6, 1)  # random trials before TPE takes over
    max_failures: int = bounded(2, 0)  # retries of a crashed trial, from its last checkpoint
    seed: int = 0  # the searcher's seed
    metric: str = choice(METRIC, REPORTED_METRICS)  # what the searcher, ASHA, checkpoints and analysis select by
    mode: str = choice(MODE, MODES)  # max | min: the metric's direction
    storage_path: str = "./ray_results"  # results root: a path, or an s3:// / gs:// URI
    name: str | None = None  # experiment name; an existing one is resumed (default: <space>-<time>)
    resume: bool = False  # continue --name, or the newest experiment in --storage-path
    address: str | None = None  # Ray cluster: auto, HOST:6379, ray://HOST:10001; http://HOST:8265 submits a job
    wandb_project: str | None = DEFAULT_PROJECT  # W&B project
    no_wandb: bool = False  # do not log to W&B
    data_dir: str | None = None  # folder with the IDX files
    smoke_test: bool = False  # two trials, two epochs, a slice of the data
    verbose: bool = False  # show Ray's and the trials' logs

    @property
    def wandb(self) -> str | None:
        """The W&B project to log to, or None."""
        return None if self.no_wandb else self.wandb_project


def experiment_name(options: SearchOptions) -> str:
    """``--name``; with ``--resume`` alone, the newest experiment in the storage path."""
    if options.name:
        return options.name
    if options.resume:
        if storage.is_uri(options.storage_path):
            raise UserInputError("--resume without --name needs a local --storage-path; with a URI give --name")
        root = Path(storage.storage_root(options.storage_path))
        states = sorted(root.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
        if not states:
            raise UserInputError(f"--resume: no experiment to resume in {root}; start one without --resume")
        return states[-1].parent.name
    space = Path(options.space).stem
    return f"{space}{'-smoke' if options.smoke_test else ''}-{time.strftime('%Y%m%d-%H%M%S')}"


def smoke_options(options: SearchOptions) -> SearchOptions:
    return dataclasses.replace(options, samples=2, max_epochs=min(options.max_epochs, 2), grace_period=1)


def base_config(space: dict[str, Any]) -> TrainConfig:
    """The constants of a space over TrainConfig's defaults: what the data split is read from."""
    sampled = [key for key in sampled_keys(space) if key in DATA_KEYS]
    if sampled:
        raise UserInputError(
            f"search space samples {', '.join(sampled)}: the data split must be one for all trials "
            f"(so their scores compare); give {sampled[0]} a single 'value:'"
        )
    return TrainConfig.from_dict({key: value for key, value in space.items() if key not in sampled_keys(space)})


def init_ray(options: SearchOptions) -> None:
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
    if len(alive) > 1 and not storage.is_uri(options.storage_path):
        print(
            f"note: {len(alive)} Ray nodes share this run, and --storage-path {options.storage_path} is a local "
            "path: every node must see it at the same place (an NFS mount), or use a URI such as "
            "s3://bucket/ray_results or gs://bucket/ray_results.",
            file=sys.stderr,
        )


def _searcher(options: SearchOptions, space: dict[str, Any], points: list[dict[str, Any]], concurrency: int):
    """HyperOpt's TPE behind a concurrency limit; None (Tune's own sampling) for a space of constants."""
    if not sampled_keys(space):  # HyperOpt cannot sample a space of constants: Tune repeats the one config
        return None
    tpe = HyperOptSearch(
        points_to_evaluate=points or None,
        n_initial_points=min(options.initial_points, options.samples),
        random_state_seed=options.seed,
    )
    return ConcurrencyLimiter(tpe, max_concurrent=concurrency)


def _scheduler(options: SearchOptions) -> ASHAScheduler:
    return ASHAScheduler(
        time_attr="epoch",
        max_t=options.max_epochs,
        grace_period=min(options.grace_period, options.max_epochs),
        reduction_factor=options.reduction_factor,
    )


def _tuner(options: SearchOptions, path: str, trainable: Any, space: SearchSpace, record: SearchRecord) -> tune.Tuner:
    """A new Tuner, or the interrupted one of the same name restored (no finished trial re-runs)."""
    if tune.Tuner.can_restore(path):
        print(f"resuming experiment {path}", flush=True)
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    if options.resume:
        raise UserInputError(
            f"--resume: {path} is not a Tune experiment that can be resumed; start it without --resume"
        )
    tune_space = space.tune_space()
    concurrency = options.concurrency or max(1, int(ray.cluster_resources().get("CPU", 1.0) // options.cpus_per_trial))
    points = [] if options.smoke_test else space.points_to_evaluate
    searcher = _searcher(options, tune_space, points, concurrency)
    name = path.rsplit("/", 1)[-1]
    return tune.Tuner(
        trainable,
        param_space=tune_space,
        tune_config=tune.TuneConfig(
            metric=record.metric,
            mode=record.mode,
            search_alg=searcher,
            max_concurrent_trials=None if searcher else concurrency,
            scheduler=_scheduler(options),
            num_samples=options.samples,
            reuse_actors=True,  # keep TensorFlow imported and warm between trials
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage.storage_root(options.storage_path),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=3, checkpoint_score_attribute=record.metric, checkpoint_score_order=record.mode
            ),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=_callbacks(options, name),
            progress_reporter=_reporter(tune_space, options, record),
            verbose=1,
        ),
    )


def _trial_dirname(trial: Any) -> str:
    """Short folder names: Tune's default spells out the whole config and overflows paths."""
    return f"trial_{trial.trial_id}"


def _callbacks(options: SearchOptions, name: str) -> list[Any]:
    if not options.wandb:
        return []
    return [WandbLoggerCallback(project=options.wandb, group=name, excludes=["node_id"])]


def _reporter(space: dict[str, Any], options: SearchOptions, record: SearchRecord) -> tune.CLIReporter:
    return tune.CLIReporter(
        parameter_columns=sampled_keys(space)[:8],
        metric_columns={record.metric: record.metric, "epoch": "epoch", "time_total_s": "secs"},
        max_report_frequency=5 if options.smoke_test else 30,
        sort_by_metric=True,  # by TuneConfig's metric and mode
        max_progress_rows=25,
    )


def _quiet_tune(options: SearchOptions) -> None:
    """Set before Tune reads them (at import of its internals and at fit)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table, trimmed by our CLIReporter
    # Keeping the best 3 checkpoints forces a state snapshot per epoch (~0.5-1 s of driver time, counted by
    # scripts/bench_search.py); Ray warns about it on every result, which buries the progress table.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not options.verbose:
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")


def run_search(options: SearchOptions) -> tune.ResultGrid:
    """Run (or resume) an experiment and return its ResultGrid; errors in inputs stop it before Ray starts."""
    _quiet_tune(options)
    space = load_space(options.space)
    if options.smoke_test:
        options = smoke_options(options)
        space = space.without("epochs")
    base = base_config(space.tune_space())
    storage.check_writable(options.storage_path)
    name = experiment_name(options)
    path = storage.experiment_path(options.storage_path, name)
    splits = load_splits(
        base.dataset,
        options.data_dir,
        base.val_fraction,
        base.split_seed,
        limit=SMOKE_TRAIN_EXAMPLES if options.smoke_test else None,
    )
    if options.wandb:
        configure_wandb_mode(f"{path}/trial_*/wandb/offline-run-*")
    init_ray(options)
    record = SearchRecord(
        metric=options.metric, mode=options.mode, space=str(space.path), parameters=space.parameters,
        options=dataclasses.asdict(options),
        scheduler={"type": "asha", "max_t": options.max_epochs, "grace_period": options.grace_period,
                   "reduction_factor": options.reduction_factor},
    )  # fmt: skip
    trainable = tune.with_resources(
        tune.with_parameters(
            train_mlp, splits=splits, max_epochs=options.max_epochs, cpus_per_trial=options.cpus_per_trial
        ),
        {"cpu": options.cpus_per_trial},
    )
    tuner = _tuner(options, path, trainable, space, record)
    if SearchRecord.load(path) is None:
        record.save(path)
    return tuner.fit()


def write_best(results: tune.ResultGrid) -> BestResult:
    """The best epoch of the experiment, written to ``best.json`` beside it (local path or URI)."""
    record = SearchRecord.load(results.experiment_path) or SearchRecord()
    best = best_result(results, record.metric, record.mode)
    summary = {
        "experiment": results.experiment_path,
        "trials": len(results),
        "errored_trials": len(results.errors),
        "best": best.to_dict(),
    }
    storage.write_text(results.experiment_path, BEST_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    return best
