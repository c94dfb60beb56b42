"""The search as a library: a Ray Tune experiment of HyperOpt (TPE) proposals, ASHA stops and our trainable.

``python -m tune_mlp.search`` parses flags into ``SearchOptions`` and calls ``run_search``; tests,
notebooks and the cluster job call it the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator

from tune_mlp import storage
from tune_mlp.config import TrainConfig
from tune_mlp.data import load_splits
from tune_mlp.errors import UserInputError
from tune_mlp.records import BEST_FILE, SearchRecord
from tune_mlp.search import searchers
from tune_mlp.search.budget import (
    BudgetError,
    TrialBudget,
    epoch_seconds,
    fit_max_epochs,
    format_duration,
    parse_duration,
    typical_config,
)
from tune_mlp.search.budget_tune import BudgetSearcher, BudgetStopper, budget_cut
from tune_mlp.search.compat import keep_starting_workers
from tune_mlp.search.extend import Part, plan_part, ran, record_part, record_run, trials_done
from tune_mlp.search.options import (
    UNTIL_BUDGET,
    SearchOptions,
    experiment_name,
    initial_points_for,
    search_plan,
    trial_slots,
)
from tune_mlp.search.recovery import KeepResultRows
from tune_mlp.search.results import BestResult, ExperimentError, best_result, experiment_uri, load_search, search_root
from tune_mlp.search.space import sampled_keys
from tune_mlp.search.standin import standin_sizes, train_standin
from tune_mlp.search.sweep import SearchPlan, keys_line
from tune_mlp.search.trainable import train_mlp
from tune_mlp.search.wandb_log import wandb_logger_callback
from tune_mlp.wandb_mode import configure_wandb_mode

SMOKE_TRAIN_EXAMPLES = 3000
__all__ = ["SearchOptions", "run_search", "write_best"]  # SearchOptions: re-exported for callers
DATA_KEYS = ("dataset", "val_fraction", "split_seed")  # one split for the whole search: trials must compare


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


def _searcher(options: SearchOptions, plan: SearchPlan, space: dict[str, Any], part: Part,
              budget: Budget | None) -> Any:  # fmt: skip
    """bayes: ``--searcher``'s (HyperOpt TPE by default; warm-started in an extension) behind a concurrency limit;
    random and grid: Tune's own variant generator. Under a time budget the searcher stops suggesting trials that
    cannot report in time."""
    points = [] if options.smoke_test or part.warm_start else plan.sweep.space.points_to_evaluate
    startup = initial_points_for(_concurrency(options), options.initial_points)
    startup = min(startup, part.samples) if part.samples > 0 else startup
    searcher = None  # random draws, every grid combination, or one config of constants repeated
    if plan.searcher == "random" and points:
        searcher = BasicVariantGenerator(points_to_evaluate=points, random_state=options.seed)
    elif plan.searcher == "hyperopt_tpe" and sampled_keys(space):
        searcher = searchers.build(options.searcher, space, options.seed, _concurrency(options), startup,
                                   evaluated=part.warm_start, points=points)  # fmt: skip
    if budget and searcher is not None:
        searcher = BudgetSearcher(searcher, budget.sizing, budget.deadline)
    return searcher


def _scheduler(options: SearchOptions, plan: SearchPlan, part: Part, max_epochs: int) -> ASHAScheduler:
    """ASHA on epochs, with the plan's grace / reduction (the file's hyperband or the flags) and this part's max_t;
    an extension's first trials meet the earlier ones at each rung."""
    if options.searcher == "bohb":
        return searchers.bohb_scheduler(max_epochs, plan.reduction_factor)
    return searchers.WarmASHA(part.histories, max_t=max_epochs, grace_period=min(plan.grace_period, max_epochs),
                              reduction_factor=plan.reduction_factor)  # fmt: skip


def _tuner(options: SearchOptions, part: Part, trainable: Any, plan: SearchPlan, record: SearchRecord,
           max_epochs: int, budget: Budget | None = None) -> tune.Tuner:  # fmt: skip
    """A new Tuner, or the interrupted one of the same name restored (no finished trial re-runs)."""
    keep_starting_workers()  # a trial's starting worker is not killed for a reused one (tune_mlp.search.compat)
    path = part.path
    fs, fs_path = storage.filesystem(path)  # what Tune reads and writes with (tune_mlp.storage: keys_out_of_environ)
    if part.resume and tune.Tuner.can_restore(fs_path, storage_filesystem=fs):
        print(f"resuming experiment {path}", flush=True)
        return tune.Tuner.restore(fs_path, trainable=trainable, resume_errored=True, storage_filesystem=fs)
    if options.resume and part.folder == ".":
        raise UserInputError(
            f"--resume: {path} is not a Tune experiment that can be resumed; start it without --resume"
        )
    tune_space = _trial_space(plan, options)
    searcher = _searcher(options, plan, tune_space, part, budget)
    name = path.rsplit("/", 1)[-1]
    return tune.Tuner(
        trainable,
        param_space=tune_space,
        tune_config=tune.TuneConfig(
            metric=record.metric,
            mode=record.mode,
            search_alg=searcher,
            max_concurrent_trials=None if searcher else _concurrency(options),
            scheduler=_scheduler(options, plan, part, max_epochs),
            num_samples=part.samples,
            # Tune's TimeoutStopper: ends the experiment when the budget is spent, and keeps what is left of it
            # in the experiment state, so Tuner.restore continues the same budget.
            time_budget_s=budget.seconds_left() if budget else None,
            # TensorFlow stays imported and warm; its compiled programs are shared by trials of one structure
            # (tune_mlp.mlp.trainer), so a worker reused for every trial stays bounded.
            reuse_actors=True,
            trial_dirname_creator=_trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=fs_path.rsplit("/", 1)[0],
            storage_filesystem=fs,
            stop=BudgetStopper(budget.deadline) if budget else None,
            checkpoint_config=_retention(record),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=_callbacks(options, part.root.rsplit("/", 1)[-1]),
            progress_reporter=_reporter(tune_space, options, record, sort=budget is None),
            verbose=1,
        ),
    )


def _retention(record: SearchRecord) -> tune.CheckpointConfig:
    """The best 3 checkpoints of a trial by the metric (and its latest, which Tune always keeps)."""
    return tune.CheckpointConfig(
        num_to_keep=3, checkpoint_score_attribute=record.metric, checkpoint_score_order=record.mode
    )


def _resources(options: SearchOptions) -> dict[str, float]:
    """One trial's request; Ray sets CUDA_VISIBLE_DEVICES from its "gpu"."""
    return {"cpu": options.cpus_per_trial} | ({"gpu": options.gpus_per_trial} if options.gpus_per_trial else {})


def _concurrency(options: SearchOptions) -> int:
    slots = trial_slots(options, ray.cluster_resources())  # also refuses more GPUs a trial than the cluster has
    return options.concurrency or slots


def _trial_dirname(trial: Any) -> str:
    """Short folder names: Tune's default spells out the whole config and overflows paths."""
    return f"trial_{trial.trial_id}"


def _callbacks(options: SearchOptions, name: str) -> list[Any]:
    """Tune's CSV and JSON result files (what analysis reads), TensorBoard's only if asked, W&B unless off; first
    ``KeepResultRows``, which mends a restarting trial's stored rows before the loggers copy them back
    (``tune_mlp.search.recovery``).

    Tune adds a TensorBoard logger by itself unless ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS`` is 1 (set in
    ``_quiet_tune``), so the loggers we keep are named here, in the order they run. The TensorBoard logger took
    ~19 % of the driver's CPU in a 200-trial search on 32 slots (py-spy, docs/benchmarks.md, Scale run 12), for
    files nothing reads.
    """
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    loggers = [CSVLoggerCallback(), JsonLoggerCallback(), *([TBXLoggerCallback()] if options.tensorboard else [])]
    wandb = [wandb_logger_callback(project=options.wandb, group=name, excludes=["node_id"])] if options.wandb else []
    return [KeepResultRows(), *loggers, *wandb]


def _reporter(space: dict[str, Any], options: SearchOptions, record: SearchRecord, sort: bool = True
              ) -> tune.CLIReporter:  # fmt: skip
    return tune.CLIReporter(
        parameter_columns=sampled_keys(space)[:8],
        metric_columns={
            record.metric: record.metric.replace("accuracy", "acc"),
            "epoch": "epoch",
            "time_total_s": "secs",
        },
        max_report_frequency=5 if options.smoke_test else 30,
        # By TuneConfig's metric and mode; not under a budget: its end terminates trials that never reported,
        # and Tune's sort fails on two trials without the metric.
        sort_by_metric=sort,
        max_progress_rows=25,
    )


@contextlib.contextmanager
def _pending_trials(options: SearchOptions, plan: SearchPlan) -> Iterator[None]:
    """While Tune runs: as many trials may wait for resources at once as there are slots, behind a searcher.

    Tune's documented knob, ``TUNE_MAX_PENDING_TRIALS_PG``, read when ``fit`` starts Tune's controller. Ray 2.57+
    takes the ConcurrencyLimiter's limit by itself; older releases take 1, so at 32 slots trials would start one
    at a time (docs/compat.md). A user's own value is kept; the process's environment is as it was afterwards.
    """
    name = "TUNE_MAX_PENDING_TRIALS_PG"
    before = os.environ.get(name)
    if plan.searcher == "hyperopt_tpe" and before is None:
        os.environ[name] = str(_concurrency(options))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def _quiet_tune(options: SearchOptions) -> None:
    """Set before Tune reads them (at import of its internals and at fit)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table, trimmed by our CLIReporter
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # _callbacks names the result loggers we keep
    # Keeping the best 3 checkpoints forces a state snapshot per epoch (~0.5-1 s of driver time, counted by
    # scripts/bench_search.py); Ray warns about it on every result, which buries the progress table.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not options.verbose:
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")


def _trial_space(plan: SearchPlan, options: SearchOptions) -> dict[str, Any]:
    """The Tune space; a smoke test leaves ``epochs`` to its 2-epoch cap."""
    space = plan.sweep.space.tune_space()
    return {key: value for key, value in space.items() if not (options.smoke_test and key == "epochs")}


@dataclasses.dataclass(frozen=True)
class Budget:
    """A fresh part's time budget: what sizes a trial, and the wall-clock end the Tune pieces are given."""

    sizing: TrialBudget
    deadline: float  # time.time() at which the budget ends

    def seconds_left(self) -> float:
        return max(self.deadline - time.time(), 1e-3)


def run_search(options: SearchOptions, plan: SearchPlan | None = None) -> tune.ResultGrid:
    """Run, resume or extend an experiment and return this run's ResultGrid; input errors stop it before Ray starts.

    ``plan``: ``search_plan(options)`` when the caller has it already (the CLI checks it before heavy imports).
    With ``samples`` above the trials an existing ``--name`` holds, the new trials form a part of their
    own (``tune_mlp.search.extend``); with ``time_budget`` the search ends in time (``tune_mlp.search.budget_tune``).
    """
    started = time.time()  # the budget counts the driver's start-up (data, Ray) too
    _quiet_tune(options)
    budget_seconds = parse_duration(options.time_budget) if options.time_budget else None  # before any write
    plan = plan or search_plan(options)
    space = _trial_space(plan, options)
    base = base_config(space)
    storage.check_writable(options.storage_path)
    path = storage.experiment_path(options.storage_path, experiment_name(options))
    asked = SearchRecord(**plan.summary(), parameters=plan.sweep.space.parameters, options=dataclasses.asdict(options))
    part = plan_part(path, plan.samples, asked, sampled_keys(space))  # refuses what it cannot do, in one line
    print(keys_line(plan.sweep), flush=True)
    splits = None if options.stand_in is not None else load_splits(
        base.dataset,
        options.data_dir,
        base.val_fraction,
        base.split_seed,
        limit=SMOKE_TRAIN_EXAMPLES if options.smoke_test else None,
    )  # fmt: skip
    sizes = (len(splits.x_train), len(splits.x_val)) if splits else standin_sizes(base)
    if options.wandb:
        configure_wandb_mode(f"{part.path}/trial_*/wandb/offline-run-*")
    init_ray(options)
    record = SearchRecord.load(path) or asked
    max_epochs = _max_epochs(plan, part, record, budget_seconds, sizes, options.cpus_per_trial)
    sizing = None
    if budget_seconds:
        grace = min(plan.grace_period, max_epochs)
        sizing = TrialBudget(budget_seconds, *sizes, options.cpus_per_trial, grace)
    # A resumed part's pieces come back from Tune's state with what was left of the budget; a new one starts it.
    budget = Budget(sizing, started + sizing.seconds) if sizing else None
    trainable = tune.with_resources(_trainable(options, splits, max_epochs, sizing), _resources(options))
    tuner = _tuner(options, part, trainable, plan, record, max_epochs, budget)
    if part.finished:  # nothing to add: the last part is reopened for its results, its record stays
        with _pending_trials(options, plan), storage.keys_out_of_environ():
            return tuner.fit()
    record = record_part(record, part, max_epochs=max_epochs, time_budget_s=budget_seconds,
                         until_budget=plan.until_budget, slots=_concurrency(options), ended_by=None)  # fmt: skip
    record = record_run(record, part, started=started)
    record_run(record, part, tuning=time.time()).save(path)
    with _pending_trials(options, plan), storage.keys_out_of_environ():
        results = tuner.fit()
    _finish_part(path, part, results, budget)
    return results


def _max_epochs(plan: SearchPlan, part: Part, record: SearchRecord, budget_seconds: float | None,
                sizes: tuple[int, int], cpus_per_trial: int) -> int:  # fmt: skip
    """ASHA's max_t: as planned, as a resumed part had it, or what fits the budget."""
    entry = next((p for p in record.parts if p.get("folder", ".") == part.folder), {})
    if part.resume and entry.get("max_epochs"):
        return int(entry["max_epochs"])
    if not budget_seconds:
        return plan.max_epochs
    typical = TrainConfig().to_dict() | typical_config(plan.sweep.space.parameters)
    seconds = epoch_seconds(typical, *sizes, cpus_per_trial)
    return fit_max_epochs(budget_seconds, seconds, plan.max_epochs, plan.grace_period)


def _trainable(options: SearchOptions, splits: Any, max_epochs: int, sizing: TrialBudget | None) -> Any:
    """The MLP on the splits, or with ``stand_in`` the sleeping stand-in (``tune_mlp.search.standin``)."""
    if options.stand_in is not None:
        return tune.with_parameters(train_standin, seconds_per_epoch=options.stand_in, max_epochs=max_epochs,
                                    budget=sizing)  # fmt: skip
    return tune.with_parameters(
        train_mlp, splits=splits, max_epochs=max_epochs, cpus_per_trial=options.cpus_per_trial, budget=sizing
    )


def _finish_part(path: str, part: Part, results: tune.ResultGrid, budget: Budget | None) -> None:
    """Record how the part ended: all its samples ran, the budget ended it, or (None) it was interrupted.

    Tune leaves no trial unfinished when the experiment ends by itself (its samples, or under a budget the
    searcher's last suggestion or Tune's TimeoutStopper); Ctrl-C leaves the running ones RUNNING, to resume.
    """
    record = SearchRecord.load(path) or SearchRecord()
    done = trials_done([part.path], record)
    ended = results.num_terminated + results.num_errors == len(results)
    ended_by = None
    if ended and part.samples != UNTIL_BUDGET and done >= part.samples:
        ended_by = "samples"
    elif ended and budget is not None:
        ended_by = "time budget"
    last = [result.metrics for result in results if result.metrics]
    stopped = budget_cut(last, budget.deadline) if budget is not None and ended_by == "time budget" else []
    record = record_part(record, part, trials=done, ended_by=ended_by, budget_stopped=stopped)
    record = dataclasses.replace(record, trials=trials_done(record.part_paths(path), record))
    record_run(record, part, ended=time.time()).save(path)


def write_best(results: tune.ResultGrid) -> BestResult:
    """The best epoch of the whole search (every part), written to ``best.json`` at its root (local path or URI)."""
    root = search_root(experiment_uri(results))
    record, every = load_search(root)
    last = record.parts[-1] if record.parts else {}
    try:
        best = best_result(every, record.metric, record.mode)
    except ExperimentError:
        if last.get("ended_by") != "time budget":
            raise
        raise BudgetError(
            f"the time budget ({format_duration(last['time_budget_s'])}) ended the search before any trial reported "
            "an epoch: give a longer --time-budget (start-up alone takes some seconds)"
        ) from None
    summary = {
        "search": dataclasses.asdict(record),
        "experiment": root,
        "trials": sum(1 for result in every if ran(result)),
        "errored_trials": sum(1 for result in every if result.error),
        "parts": len(record.part_paths(root)),
        "ended_by": last.get("ended_by"),
        "time_budget_s": last.get("time_budget_s"),
        "best": best.to_dict(),
    }
    storage.write_text(root, BEST_FILE, json.dumps(summary, indent=2, default=str) + "\n")
    return best
