"""What a search is asked to do: ``SearchOptions`` (the flags) and the plan a sweep file and those flags make.

Kept free of TensorFlow so ``python -m tune_mlp.search`` checks flags and the sweep file, and answers
``--dry-run``, before the heavy imports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from tune_mlp import storage
from tune_mlp.config import MODES, REPORTED_METRICS, bounded, choice, option
from tune_mlp.errors import UserInputError
from tune_mlp.search.distributions import grid_values
from tune_mlp.search.peers import SEARCHERS
from tune_mlp.search.sweep import SEARCHERS as METHOD_SEARCHERS
from tune_mlp.search.sweep import SearchPlan, load_sweep
from tune_mlp.wandb_mode import DEFAULT_PROJECT

PLAN_DEFAULTS = {"samples": 20, "max_epochs": 30, "grace_period": 3, "reduction_factor": 3}
# With --time-budget and neither --max-epochs nor the file's max_iter, max_t is what fits the budget, up to this:
# a longer budget buys the leading trials more epochs, not only more trials.
BUDGET_MAX_EPOCHS = 100
# With --time-budget and neither --samples nor the file's run_cap, trials start until the budget ends
# (a user who gives a time says how long, not how many): Tune's num_samples=-1.
UNTIL_BUDGET = -1


# TPE's random start-up trials when --initial-points is not given: the study's 6 up to STARTUP_MAX_SLOTS slots, above
# it half the slots. Replayed on the study table (100 seeds; docs/benchmarks.md, issue 18) every start-up count from
# 6 to one per slot tied with random search at 8, 32 and 64 workers; half the slots had the best point estimates.
INITIAL_POINTS = 6
STARTUP_MAX_SLOTS = 8


def initial_points_for(slots: int, given: int | None = None) -> int:
    """``--initial-points`` if given, else its default for a search of ``slots`` trials at once."""
    if given is not None:
        return given
    return INITIAL_POINTS if slots <= STARTUP_MAX_SLOTS else max(INITIAL_POINTS, slots // 2)


@dataclass(frozen=True)
class SearchOptions:
    """How to search; what to train is in the space file and TrainConfig."""

    # None: the sweep file's value (run_cap, early_terminate), else PLAN_DEFAULTS; a flag given wins over the file.
    samples: int | None = bounded(
        None,
        1,
        help="trials to run (default: run_cap, else 20; with a budget: until it ends); "
        "above an existing --name's: more",
    )
    time_budget: str | None = option(None, "end the whole search after this long (90s, 10m, 1h30m); max-epochs fits it")
    space: str = option("default", "search space: a W&B sweep file, or a name in search_spaces/")
    max_epochs: int | None = bounded(
        None,
        1,
        help="ASHA's max_t, the most epochs a trial trains "
        "(default: max_iter, else 30; with a budget: what fits, <= 100)",
    )
    grace_period: int | None = bounded(None, 1, help="epochs before ASHA may stop a trial (default: min_iter, else 3)")
    reduction_factor: float | None = bounded(
        None, 1, low_open=True, help="ASHA keeps 1/this at each rung (eta, else 3)"
    )
    cpus_per_trial: int = bounded(1, 1, help="CPUs (TensorFlow threads) per trial")
    gpus_per_trial: float = bounded(0.0, 0.0, help="GPUs per trial; a fraction shares one (0.25: four trials a GPU)")
    concurrency: int | None = bounded(None, 1, help="trials at once (default: cluster CPUs / cpus-per-trial)")
    initial_points: int | None = bounded(
        None,
        1,
        help=f"random trials before TPE takes over (default: {INITIAL_POINTS}; "
        f"above {STARTUP_MAX_SLOTS} slots, half the slots)",
    )
    searcher: str = choice(
        "hyperopt", SEARCHERS, help="hyperopt (TPE), or a peer: optuna, bohb (tune_mlp[peers]), random"
    )
    max_failures: int = bounded(2, 0, help="retries of a crashed trial, from its last checkpoint")
    seed: int = option(0, "the searcher's seed")
    metric: str | None = choice(None, tuple(REPORTED_METRICS), help="what all parts select by (default: the file's)")
    mode: str | None = choice(None, MODES, help="max | min (default: the file's goal, else the metric's direction)")
    storage_path: str = option("./ray_results", "results root: a path, or an s3:// / gs:// URI")
    name: str | None = option(None, "experiment name; an existing one is resumed (default: <space>-<time>)")
    resume: bool = option(False, "continue --name, or the newest experiment in --storage-path")
    address: str | None = option(None, "Ray cluster: auto, HOST:6379, ray://HOST:10001; http://HOST:8265 submits a job")
    wandb_project: str | None = option(DEFAULT_PROJECT, "W&B project")
    no_wandb: bool = option(False, "do not log to W&B")
    data_dir: str | None = option(None, "folder with the IDX files")
    smoke_test: bool = option(False, "two trials, two epochs, a slice of the data")
    verbose: bool = option(False, "show Ray's and the trials' logs")
    tensorboard: bool = option(False, "also write TensorBoard event files for every trial (Tune's TBXLoggerCallback)")
    stand_in: float | None = bounded(
        None,
        0,
        help="seconds per epoch: trials sleep and report a made-up curve instead of training (try a set-up, time Ray)",
    )
    dry_run: bool = option(False, "print the Tune space, searcher, scheduler and sample count the file gives, and exit")

    @property
    def wandb(self) -> str | None:
        """The W&B project to log to, or None."""
        return None if self.no_wandb else self.wandb_project


def search_plan(options: SearchOptions) -> SearchPlan:
    """The one place a search's plan is made: flags given over the sweep file over PLAN_DEFAULTS.

    A budget without a count runs until it ends (``samples`` -1, Tune's form); a smoke test is two tiny trials.
    """
    sweep = load_sweep(options.space)
    hyperband = sweep.hyperband
    from_file = {
        "samples": 1 if sweep.method == "grid" else sweep.run_cap,
        "max_epochs": hyperband.max_t if hyperband else None,
        "grace_period": hyperband.grace_period if hyperband else None,
        "reduction_factor": hyperband.reduction_factor if hyperband else None,
    }
    budget = {"max_epochs": BUDGET_MAX_EPOCHS, "samples": UNTIL_BUDGET} if options.time_budget else {}
    defaults = PLAN_DEFAULTS | budget
    chosen = {
        key: next(value for value in (getattr(options, key), from_file[key], defaults[key]) if value is not None)
        for key in PLAN_DEFAULTS
    }
    grid = sweep.method == "grid"  # a grid keeps every combination, one sample each
    if options.smoke_test:
        chosen |= {"samples": chosen["samples"] if grid else 2, "max_epochs": min(chosen["max_epochs"], 2),
                   "grace_period": 1}  # fmt: skip
    metric = options.metric or sweep.metric
    mode = options.mode or (sweep.mode if metric == sweep.metric else REPORTED_METRICS[metric])
    combinations = math.prod(len(grid_values(spec)) for spec in sweep.space.parameters.values()) if grid else 1
    return SearchPlan(
        sweep=sweep,
        searcher=METHOD_SEARCHERS[sweep.method],
        metric=metric,
        mode=mode,
        samples=chosen["samples"],
        trials=chosen["samples"] * combinations if chosen["samples"] != UNTIL_BUDGET else UNTIL_BUDGET,
        max_epochs=chosen["max_epochs"],
        grace_period=min(chosen["grace_period"], chosen["max_epochs"]),
        reduction_factor=chosen["reduction_factor"],
    )


def trial_slots(options: SearchOptions, cluster: dict[str, float]) -> int:
    """Trials that fit at once in ``cluster`` (``ray.cluster_resources()``): the fewer of its CPU and GPU slots.

    A trial asking for more GPUs than the cluster has would wait for ever (Ray calls it infeasible): an error.
    """
    cpus = max(1, int(cluster.get("CPU", 1.0) // options.cpus_per_trial))
    gpus = options.gpus_per_trial
    if not gpus:
        return cpus
    flag = f"--gpus-per-trial {gpus:g}"
    if gpus > 1 and not float(gpus).is_integer():
        raise UserInputError(f"{flag}: above 1 a trial takes whole GPUs; give a fraction below 1, or 1, 2, ...")
    have = cluster.get("GPU", 0.0)
    if gpus > have:
        fix = f"give at most {have:g}" if have else "give 0 (train on CPUs) or start Ray on a GPU node"
        raise UserInputError(f"{flag}: the Ray cluster has {have:g} GPU(s); {fix}")
    # Ray keeps GPU fractions to 4 decimals: 1 / 0.1 must count 10 slots, not 9.
    return max(1, min(cpus, int(round(have / gpus, 4))))


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
