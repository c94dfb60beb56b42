"""The plan's Tune objects (searcher, ASHA, callbacks, reporter) and ``run_search``, the one place that starts or
restores Tune; the CLI, tests, notebooks and the cluster job call it with a ``SearchPlan`` or ``SearchOptions``."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator, Searcher

from tune_mlp import storage
from tune_mlp.data import load_splits
from tune_mlp.errors import UserInputError
from tune_mlp.records import SearchRecord
from tune_mlp.search import searchers
from tune_mlp.search.compat import keep_starting_workers
from tune_mlp.search.plan import (
    SearchOptions,
    SearchPlan,
    TrialBudget,
    correction_factor,
    experiment_name,
    first_rung_seconds,
    initial_points_for,
    keys_line,
    search_plan,
    trial_slots,
)
from tune_mlp.search.recovery import KeepResultRows
from tune_mlp.search.results import Part, finish_part, plan_part, record_part, write_best
from tune_mlp.search.trainable import standin_sizes, train_mlp, train_standin
from tune_mlp.search.tune_space import sampled_keys
from tune_mlp.search.wandb_log import WandbLoggerCallback
from tune_mlp.wandb_mode import configure_wandb_mode

SMOKE_TRAIN_EXAMPLES = 3000
__all__ = ["SearchOptions", "run_search", "write_best"]  # re-exported for callers


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


def _searcher(plan: SearchPlan, space: dict[str, Any], part: Part, concurrency: int, budget: Budget | None) -> Any:
    """bayes: ``--searcher``'s (warm-started in an extension); random and grid: Tune's own variant generator; under
    a time budget, wrapped to stop suggesting trials that cannot report in time."""
    options = plan.options
    points = [] if options.smoke_test or part.warm_start else plan.sweep.space.points_to_evaluate
    startup = initial_points_for(concurrency, options.initial_points)
    startup = min(startup, part.samples) if part.samples > 0 else startup
    searcher = None  # random draws, every grid combination, or one config of constants repeated
    if plan.searcher == "random" and points:
        searcher = BasicVariantGenerator(points_to_evaluate=points, random_state=options.seed)
    elif plan.searcher == "hyperopt_tpe" and sampled_keys(space):
        searcher = searchers.build(options.searcher, space, options.seed, concurrency, startup,
                                   evaluated=part.warm_start, points=points)  # fmt: skip
    if budget and searcher is not None:
        searcher = BudgetSearcher(searcher, budget.sizing, budget.deadline)
    return searcher


def _scheduler(plan: SearchPlan, part: Part, max_epochs: int) -> ASHAScheduler:
    """ASHA on epochs with this part's max_t, the earlier parts' trials at its rungs (BOHB: its own HyperBand)."""
    if plan.options.searcher == "bohb":  # TuneBOHB's own scheduler
        from ray.tune.schedulers import HyperBandForBOHB

        return HyperBandForBOHB(time_attr="epoch", max_t=max_epochs, reduction_factor=plan.reduction_factor)
    return searchers.WarmASHA(part.histories, max_t=max_epochs, grace_period=min(plan.grace_period, max_epochs),
                              reduction_factor=plan.reduction_factor)  # fmt: skip


def _tuner(plan: SearchPlan, space: dict[str, Any], part: Part, trainable: Any, record: SearchRecord, max_epochs: int,
           concurrency: int, budget: Budget | None) -> tune.Tuner:  # fmt: skip
    """A new Tuner, or the interrupted one restored (no finished trial re-runs)."""
    keep_starting_workers()  # a trial's starting worker is not killed for a reused one (tune_mlp.search.compat)
    options, path = plan.options, part.path
    fs, fs_path = storage.filesystem(path)  # what Tune reads and writes with (tune_mlp.storage: keys_out_of_environ)
    if part.resume and tune.Tuner.can_restore(fs_path, storage_filesystem=fs):
        print(f"resuming experiment {path}", flush=True)
        return tune.Tuner.restore(fs_path, trainable=trainable, resume_errored=True, storage_filesystem=fs)
    if options.resume and part.folder == ".":
        raise UserInputError(
            f"--resume: {path} is not a Tune experiment that can be resumed; start it without --resume"
        )
    searcher = _searcher(plan, space, part, concurrency, budget)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=record.metric,
            mode=record.mode,
            search_alg=searcher,
            max_concurrent_trials=None if searcher else concurrency,
            scheduler=_scheduler(plan, part, max_epochs),
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
            name=path.rsplit("/", 1)[-1],
            storage_path=fs_path.rsplit("/", 1)[0],
            storage_filesystem=fs,
            stop=BudgetStopper(budget.deadline) if budget else None,
            # The best 3 checkpoints of a trial by the metric (and its latest, which Tune always keeps).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=3, checkpoint_score_attribute=record.metric,
                                                    checkpoint_score_order=record.mode),  # fmt: skip
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=_callbacks(options, part.root.rsplit("/", 1)[-1]),
            progress_reporter=_reporter(space, options, record, sort=budget is None),
            verbose=1,
        ),
    )


def _resources(options: SearchOptions) -> dict[str, float]:
    """One trial's request; Ray sets CUDA_VISIBLE_DEVICES from its "gpu"."""
    return {"cpu": options.cpus_per_trial} | ({"gpu": options.gpus_per_trial} if options.gpus_per_trial else {})


def _trial_dirname(trial: Any) -> str:
    """Short folder names: Tune's default spells out the whole config and overflows paths."""
    return f"trial_{trial.trial_id}"


def _callbacks(options: SearchOptions, name: str) -> list[Any]:
    """Tune's CSV and JSON result files (what analysis reads), TensorBoard's only if asked (Tune's automatic one took
    ~19 % of the driver's CPU at 32 slots: docs/benchmarks.md, Scale run 12), W&B unless off; ``KeepResultRows``
    first, so a restarting trial's rows are mended before the loggers copy them back."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    loggers = [CSVLoggerCallback(), JsonLoggerCallback(), *([TBXLoggerCallback()] if options.tensorboard else [])]
    wandb = [WandbLoggerCallback(project=options.wandb, group=name, excludes=["node_id"])] if options.wandb else []
    return [KeepResultRows(), *loggers, *wandb]


def _reporter(space: dict[str, Any], options: SearchOptions, record: SearchRecord, sort: bool = True
              ) -> tune.CLIReporter:  # fmt: skip
    return tune.CLIReporter(
        parameter_columns=sampled_keys(space)[:8],
        metric_columns={record.metric: record.metric.replace("accuracy", "acc"), "epoch": "epoch",
                        "time_total_s": "secs"},  # fmt: skip
        max_report_frequency=5 if options.smoke_test else 30,
        # By TuneConfig's metric and mode; not under a budget: its end terminates trials that never reported,
        # and Tune's sort fails on two trials without the metric.
        sort_by_metric=sort,
        max_progress_rows=25,
    )


@contextlib.contextmanager
def _pending_trials(plan: SearchPlan, concurrency: int) -> Iterator[None]:
    """While Tune runs, as many trials may wait for resources as there are slots (Tune's ``TUNE_MAX_PENDING_TRIALS_PG``:
    before Ray 2.57 it is 1 behind a searcher, docs/compat.md); a user's own value is kept, and restored after."""
    name = "TUNE_MAX_PENDING_TRIALS_PG"
    before = os.environ.get(name)
    if plan.searcher == "hyperopt_tpe" and before is None:
        os.environ[name] = str(concurrency)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def _quiet_tune(options: SearchOptions) -> None:
    """Set before Tune reads them (at import of its internals and at fit)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic table, trimmed by our CLIReporter
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # _callbacks names the result loggers we keep
    # Keeping the best 3 checkpoints forces a state snapshot per epoch (~0.5-1 s of driver time); Ray warns about it
    # on every result, which buries the progress table.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not options.verbose:
        os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")


def run_search(plan: SearchPlan | SearchOptions) -> tune.ResultGrid:
    """Run, resume or extend (``results.plan_part``) an experiment and return this run's ResultGrid; input errors
    stop it before Ray starts."""
    started = time.time()  # the budget counts the driver's start-up (data, Ray) too
    plan = plan if isinstance(plan, SearchPlan) else search_plan(plan)
    options = plan.options
    _quiet_tune(options)
    space, base = plan.tune_space(), plan.base_config()
    storage.check_writable(options.storage_path)
    path = storage.experiment_path(options.storage_path, experiment_name(options))
    asked = SearchRecord(**plan.summary(), parameters=plan.sweep.space.parameters, options=dataclasses.asdict(options))
    part = plan_part(path, plan.samples, asked, sampled_keys(space))  # refuses what it cannot do, in one line
    print(keys_line(plan.sweep), flush=True)
    splits = None if options.stand_in is not None else load_splits(
        base.dataset, options.data_dir, base.val_fraction, base.split_seed,
        limit=SMOKE_TRAIN_EXAMPLES if options.smoke_test else None,
    )  # fmt: skip
    sizes = (len(splits.x_train), len(splits.x_val)) if splits else standin_sizes(base)
    if options.wandb:
        configure_wandb_mode(f"{part.path}/trial_*/wandb/offline-run-*")
    init_ray(options)
    slots = trial_slots(options, ray.cluster_resources())  # also refuses more GPUs a trial than the cluster has
    concurrency = options.concurrency or slots
    record = SearchRecord.load(path) or asked
    entry = next((p for p in record.parts if p.get("folder", ".") == part.folder), {})
    max_epochs = plan.fitted_max_epochs(sizes, int(entry["max_epochs"]) if part.resume and entry.get("max_epochs")
                                        else None)  # fmt: skip
    budget = None
    if plan.time_budget_s:  # a resumed part's pieces come back from Tune's state with what was left of the budget
        sizing = TrialBudget(plan.time_budget_s, *sizes, options.cpus_per_trial, min(plan.grace_period, max_epochs))
        budget = Budget(sizing, started + sizing.seconds)
    trainable = tune.with_resources(_trainable(options, splits, max_epochs, budget), _resources(options))
    tuner = _tuner(plan, space, part, trainable, record, max_epochs, concurrency, budget)
    if not part.finished:  # finished: nothing to add, the last part is reopened for its results, its record stays
        record_part(record, part, {"started": started, "tuning": time.time()}, max_epochs=max_epochs,
                    time_budget_s=plan.time_budget_s, until_budget=plan.until_budget, slots=concurrency,
                    ended_by=None).save(path)  # fmt: skip
    with _pending_trials(plan, concurrency), storage.keys_out_of_environ():
        results = tuner.fit()
    if not part.finished:
        finish_part(path, part, results, budget.deadline if budget else None)
    return results


def _trainable(options: SearchOptions, splits: Any, max_epochs: int, budget: Budget | None) -> Any:
    """The MLP on the splits, or with ``stand_in`` the sleeping stand-in (``tune_mlp.search.trainable``)."""
    sizing = budget.sizing if budget else None
    if options.stand_in is not None:
        return tune.with_parameters(train_standin, seconds_per_epoch=options.stand_in, max_epochs=max_epochs,
                                    budget=sizing)  # fmt: skip
    return tune.with_parameters(
        train_mlp, splits=splits, max_epochs=max_epochs, cpus_per_trial=options.cpus_per_trial, budget=sizing
    )


@dataclasses.dataclass(frozen=True)
class Budget:
    """A part's time budget: what sizes a trial, and the wall-clock end. Tune's TimeoutStopper ends the experiment;
    ``BudgetStopper`` and ``BudgetSearcher`` save the seconds left in Tune's state and count on from there."""

    sizing: TrialBudget
    deadline: float  # time.time() at which the budget ends

    def seconds_left(self) -> float:
        return max(self.deadline - time.time(), 1e-3)


def _left(deadline: float) -> float:
    return deadline - time.time()


class BudgetStopper(tune.Stopper):
    """Stops a trial whose next epoch would not finish before ``deadline``, at a reported epoch with its checkpoint,
    instead of losing a half-run epoch at the end; the experiment's end is Tune's."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return _left(self.deadline) < float(result.get("time_this_iter_s") or 0.0)

    def stop_all(self) -> bool:
        return False  # Tune's TimeoutStopper ends the experiment

    # Tune pickles the stopper into its experiment state at every checkpoint and restores it from there.
    def __getstate__(self) -> dict[str, Any]:
        return {"seconds_left": _left(self.deadline)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.deadline = time.time() + state["seconds_left"]


class BudgetSearcher(Searcher):
    """Wraps a searcher; once a proposal could not reach its first ASHA rung before ``deadline`` (predicted from its
    size, corrected by the epoch times measured so far), the search is FINISHED."""

    def __init__(self, searcher: Searcher, sizing: TrialBudget, deadline: float) -> None:
        Searcher.__init__(self, metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.sizing, self.deadline = searcher, sizing, deadline
        self.measured: list[tuple[float, float]] = []  # (measured, predicted) epoch seconds
        self.predicted: dict[str, float] = {}  # trial_id -> predicted epoch seconds (results arrive flattened)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        if _left(self.deadline) <= 0:
            return Searcher.FINISHED
        config = self.searcher.suggest(trial_id)
        if not isinstance(config, dict):
            return config
        predicted = self.predicted[trial_id] = self.sizing.epoch_seconds(config)
        needed = first_rung_seconds(predicted, self.sizing.grace_period, correction_factor(self.measured))
        if needed > _left(self.deadline):
            self.searcher.on_trial_complete(trial_id, error=True)  # withdrawn: not left pending in TPE
            return Searcher.FINISHED
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self.predicted and result.get("time_this_iter_s"):
            self.measured.append((float(result["time_this_iter_s"]), self.predicted[trial_id]))
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    # Tune saves a wrapper's state with get_state (the wrapped searcher saves its own) and restores it with set_state.
    def get_state(self) -> dict[str, Any]:
        return {"measured": self.measured, "predicted": self.predicted, "seconds_left": _left(self.deadline)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.measured, self.predicted = list(state["measured"]), dict(state["predicted"])
        self.deadline = time.time() + state["seconds_left"]
