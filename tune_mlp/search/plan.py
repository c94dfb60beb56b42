"""The plan of a search, made in one place: ``SearchOptions`` (the flags) over the sweep file over the defaults,
into one frozen ``SearchPlan`` that ``--dry-run`` prints; and a time budget's arithmetic. Free of Ray and
TensorFlow, so flags and the sweep file are checked, and ``--dry-run`` answered, before the heavy imports.
"""

from __future__ import annotations

import importlib.util
import math
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tune_mlp import storage
from tune_mlp.config import MODES, REPORTED_METRICS, TrainConfig, bounded, choice, option
from tune_mlp.errors import UserInputError
from tune_mlp.search.space import Sweep, grid_values, load_sweep
from tune_mlp.wandb_mode import DEFAULT_PROJECT

PLAN_DEFAULTS = {"samples": 20, "max_epochs": 30, "grace_period": 3, "reduction_factor": 3}
# Under --time-budget without --max-epochs or max_iter, max_t is what fits the budget, up to this (a longer budget
# buys the leading trials more epochs); without --samples or run_cap, trials start until it ends (num_samples -1).
BUDGET_MAX_EPOCHS = 100
UNTIL_BUDGET = -1
# TPE's random start-up trials without --initial-points: 6 up to STARTUP_MAX_SLOTS slots, above it half the slots
# (the replays of docs/benchmarks.md, "The study table", issue 18).
INITIAL_POINTS = 6
STARTUP_MAX_SLOTS = 8
METHOD_SEARCHERS = {"bayes": "hyperopt_tpe", "random": "random", "grid": "grid"}
# --searcher: ours, or a peer the replay benchmark compares it with (optuna and bohb: the tune_mlp[peers] extra).
SEARCHERS = ("hyperopt", "optuna", "bohb", "random")
DATA_KEYS = ("dataset", "val_fraction", "split_seed")  # one split for the whole search: trials must compare
NEEDS = {"optuna": ("optuna",), "bohb": ("hpbandster", "ConfigSpace")}
DURATION_EXAMPLES = "90s, 10m, 1h or 1h30m"
_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
# The budget's cost model: an epoch's time from the weight count. Weights x examples per CPU-second of the
# compiled loop (forward + backward + update): the measured 3x128 rate (134k weights, ~140k samples/s on 2 cores),
# rounded down per core; a running search corrects it with the epoch times it measures.
WEIGHT_SAMPLES_PER_CORE_SECOND = 1.0e10
TRIAL_START_SECONDS = 5.0  # a trial's start (actor reuse, XLA compile of the epoch graph) on top of its first epoch
# A full-length trial of the space's typical config may take at most this share of the budget: the first trials
# have no peers for ASHA to stop them by, yet the best need their epochs (docs/benchmarks.md: 1/4 gave 0.895).
FULL_TRIAL_SHARE = 0.5


@dataclass(frozen=True)
class SearchOptions:
    """How to search; what to train is in the space file and TrainConfig."""

    # None: the sweep file's value (run_cap, early_terminate), else PLAN_DEFAULTS; a flag given wins over the file.
    samples: int | None = bounded(None, 1, help="trials to run (default: run_cap, else 20; with a budget: until it "
                                  "ends); above an existing --name's: more")  # fmt: skip
    time_budget: str | None = option(None, "end the whole search after this long (90s, 10m, 1h30m); max-epochs fits it")
    space: str = option("default", "search space: a W&B sweep file, or a name in search_spaces/")
    max_epochs: int | None = bounded(None, 1, help="ASHA's max_t, the most epochs a trial trains "
                                     "(default: max_iter, else 30; with a budget: what fits, <= 100)")  # fmt: skip
    grace_period: int | None = bounded(None, 1, help="epochs before ASHA may stop a trial (default: min_iter, else 3)")
    reduction_factor: float | None = bounded(None, 1, low_open=True,
                                             help="ASHA keeps 1/this at each rung (eta, else 3)")  # fmt: skip
    cpus_per_trial: int = bounded(1, 1, help="CPUs (TensorFlow threads) per trial")
    gpus_per_trial: float = bounded(0.0, 0.0, help="GPUs per trial; a fraction shares one (0.25: four trials a GPU)")
    concurrency: int | None = bounded(None, 1, help="trials at once (default: cluster CPUs / cpus-per-trial)")
    initial_points: int | None = bounded(None, 1, help=f"random trials before TPE takes over (default: {INITIAL_POINTS}"
                                         f"; above {STARTUP_MAX_SLOTS} slots, half the slots)")  # fmt: skip
    searcher: str = choice("hyperopt", SEARCHERS, help="hyperopt (TPE), or a peer: optuna, bohb (tune_mlp[peers]), "
                           "random")  # fmt: skip
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
    stand_in: float | None = bounded(None, 0, help="seconds per epoch: trials sleep and report a made-up curve "
                                     "instead of training (try a set-up, time Ray)")  # fmt: skip
    dry_run: bool = option(False, "print the Tune space, searcher, scheduler and sample count the file gives, and exit")

    @property
    def wandb(self) -> str | None:
        """The W&B project to log to, or None."""
        return None if self.no_wandb else self.wandb_project


@dataclass(frozen=True)
class SearchPlan:
    """What the search driver runs: the flags, the sweep file, and what they decide together."""

    options: SearchOptions
    sweep: Sweep
    searcher: str  # hyperopt_tpe | random | grid
    metric: str
    mode: str
    samples: int  # Tune's num_samples (a grid runs every combination once per sample); -1: until the budget ends
    trials: int  # trials asked for: samples, or samples x combinations for a grid; -1: until the budget ends
    max_epochs: int  # ASHA's max_t and each trial's epochs (under a budget: fitted to it when the data is known)
    grace_period: int
    reduction_factor: float
    time_budget_s: float | None = None  # --time-budget in seconds

    @property
    def until_budget(self) -> bool:
        """Trials start until the time budget ends (no count was asked for)."""
        return self.samples == UNTIL_BUDGET

    def tune_space(self) -> dict[str, Any]:
        """Tune's param_space (Ray loads here); a smoke test leaves ``epochs`` to its 2-epoch cap."""
        from tune_mlp.search.tune_space import to_tune_space

        space = to_tune_space(self.sweep.space)
        return {key: value for key, value in space.items() if not (self.options.smoke_test and key == "epochs")}

    def base_config(self) -> TrainConfig:
        """The constants of the space over TrainConfig's defaults: what the data split is read from."""
        if data := [key for key in self.sweep.space.sampled() if key in DATA_KEYS]:
            raise UserInputError(
                f"search space samples {', '.join(data)}: the data split must be one for all trials "
                f"(so their scores compare); give {data[0]} a single 'value:'"
            )
        constants = self.sweep.space.constants().items()
        return TrainConfig.from_dict({k: v for k, v in constants if not (self.options.smoke_test and k == "epochs")})

    def summary(self) -> dict[str, Any]:
        """The plan as written beside the experiment (search.json) for the report."""
        return {
            "space": str(self.sweep.path),
            "method": self.sweep.method,
            "searcher": self.searcher,
            "metric": self.metric,
            "mode": self.mode,
            "samples": self.trials,  # trials asked for (SearchRecord: samples asked, trials ran)
            "num_samples": self.samples,
            "scheduler": {"type": "asha", "time_attr": "epoch", "max_t": self.max_epochs,
                          "grace_period": self.grace_period, "reduction_factor": self.reduction_factor,
                          "from_early_terminate": self.sweep.hyperband is not None},
            "used_keys": list(self.sweep.used),
            "ignored_keys": list(self.sweep.ignored),
        }  # fmt: skip

    def fitted_max_epochs(self, sizes: tuple[int, int], resumed: int | None = None) -> int:
        """ASHA's max_t: a resumed part's, else as planned or what fits the budget on ``sizes`` (train, val)."""
        if resumed:
            return resumed
        if not self.time_budget_s:
            return self.max_epochs
        typical = TrainConfig().to_dict() | typical_config(self.sweep.space.parameters)
        seconds = epoch_seconds(typical, *sizes, self.options.cpus_per_trial)
        return fit_max_epochs(self.time_budget_s, seconds, self.max_epochs, self.grace_period)


def search_plan(options: SearchOptions) -> SearchPlan:
    """The one place a search's plan is made: flags given over the sweep file over PLAN_DEFAULTS; bad input (a
    budget, the file, a searcher the file cannot drive) is one UserInputError, before anything loads."""
    budget_s = parse_duration(options.time_budget) if options.time_budget else None
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
    plan = SearchPlan(
        options=options,
        sweep=sweep,
        searcher=METHOD_SEARCHERS[sweep.method],
        metric=metric,
        mode=mode,
        samples=chosen["samples"],
        trials=chosen["samples"] * combinations if chosen["samples"] != UNTIL_BUDGET else UNTIL_BUDGET,
        max_epochs=chosen["max_epochs"],
        grace_period=min(chosen["grace_period"], chosen["max_epochs"]),
        reduction_factor=chosen["reduction_factor"],
        time_budget_s=budget_s,
    )
    if (searcher := options.searcher) != "hyperopt":  # a peer: a search it can drive, its library installed
        if plan.searcher != "hyperopt_tpe" and searcher != "random":
            raise UserInputError(
                f"--searcher {searcher}: the space's method gives {plan.searcher} search; "
                "use a space with method: bayes"
            )
        if searcher == "bohb" and options.time_budget:
            raise UserInputError("--searcher bohb does not take --time-budget (HyperBand pauses trials); drop one")
        check_installed(searcher)
    plan.base_config()  # the data split must be one for all trials
    return plan


def check_installed(searcher: str) -> None:
    """Refuse a peer whose library is missing, naming the extra that installs it."""
    missing = [name for name in NEEDS.get(searcher, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise UserInputError(f"--searcher {searcher} needs {' and '.join(missing)}: pip install 'tune_mlp[peers]'")


def initial_points_for(slots: int, given: int | None = None) -> int:
    """``--initial-points`` if given, else its default for a search of ``slots`` trials at once."""
    if given is not None:
        return given
    return INITIAL_POINTS if slots <= STARTUP_MAX_SLOTS else max(INITIAL_POINTS, slots // 2)


def trial_slots(options: SearchOptions, cluster: dict[str, float]) -> int:
    """Trials that fit at once in ``cluster`` (``ray.cluster_resources()``): the fewer of its CPU and GPU slots."""
    cpus = max(1, int(cluster.get("CPU", 1.0) // options.cpus_per_trial))
    gpus = options.gpus_per_trial
    if not gpus:
        return cpus
    flag = f"--gpus-per-trial {gpus:g}"
    if gpus > 1 and not float(gpus).is_integer():
        raise UserInputError(f"{flag}: above 1 a trial takes whole GPUs; give a fraction below 1, or 1, 2, ...")
    have = cluster.get("GPU", 0.0)
    if gpus > have:  # Ray would call the trial infeasible and wait for ever
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


def keys_line(sweep: Sweep) -> str:
    """The one line a search prints about the file: which keys it used and which it ignored."""
    ignored = f"; ignored: {', '.join(sweep.ignored)} (not search settings)" if sweep.ignored else ""
    notes = f"; note: {'; '.join(sweep.notes)}" if sweep.notes else ""
    return f"sweep file {sweep.path}: used {', '.join(sweep.used)}{ignored}{notes}"


def describe_plan(plan: SearchPlan) -> str:
    """The ``--dry-run`` text: the Tune space, the searcher, the scheduler with its parameters, the sample count."""
    options = plan.options
    if options.initial_points or options.concurrency:  # else the slots are the cluster's, unknown until Ray starts
        startup: int | str = initial_points_for(options.concurrency or 1, options.initial_points)
    else:
        startup = f"{INITIAL_POINTS} (above {STARTUP_MAX_SLOTS} slots: half the slots)"
    searcher = {
        "hyperopt_tpe": f"HyperOptSearch (TPE; {startup} random points first, seed {options.seed})",
        "random": "random search (Tune's BasicVariantGenerator, no searcher)",
        "grid": "grid search (tune.grid_search over every combination; no searcher)",
    }[plan.searcher]
    from tune_mlp.search.tune_space import describe_value, to_tune_space

    space = to_tune_space(plan.sweep.space)
    width = max(len(key) for key in space)
    grid = f" x grid of {plan.trials // plan.samples} = {plan.trials} trials" if plan.searcher == "grid" else ""
    samples = "until the time budget ends (--samples N caps them)" if plan.until_budget else f"{plan.samples}{grid}"
    lines = [
        keys_line(plan.sweep),
        f"method: {plan.sweep.method} -> {searcher}",
        f"metric: {plan.metric} ({plan.mode})",
        f"scheduler: ASHA(time_attr=epoch, max_t={plan.max_epochs}, grace_period={plan.grace_period}, "
        f"reduction_factor={plan.reduction_factor})",
        f"samples: {samples}",
        "space:",
        *(f"  {key:<{width}}  {describe_value(value)}" for key, value in space.items()),
    ]
    if plan.sweep.space.points_to_evaluate:
        lines.append(f"points_to_evaluate: {len(plan.sweep.space.points_to_evaluate)} start point(s)")
    at_once = options.concurrency or "as many as the cluster's CPUs and GPUs fit"
    lines.append(
        f"per trial: cpus {options.cpus_per_trial}, gpus {options.gpus_per_trial:g}; trials at once: {at_once}"
    )
    if options.searcher != "hyperopt" and plan.searcher == "hyperopt_tpe":
        peer = {
            "optuna": f"OptunaSearch (Optuna TPE, multivariate, constant liar; seed {options.seed}) instead of "
            "HyperOpt, warm-started in an extension as HyperOpt is",
            "bohb": f"TuneBOHB (seed {options.seed}) with HyperBandForBOHB instead of HyperOpt and ASHA",
            "random": "random search (Tune's BasicVariantGenerator) instead of HyperOpt",
        }[options.searcher]
        lines.append(f"searcher: --searcher {options.searcher} -> {peer}")
    if options.time_budget:
        lines.append(
            f"time budget: {options.time_budget}; max_t is fitted to it when the data is loaded (a full typical "
            f"trial takes at most {FULL_TRIAL_SHARE:.0%} of it), never above {plan.max_epochs}"
        )
    return "\n".join(lines)


class BudgetError(UserInputError, ValueError):
    """A ``--time-budget`` that is not a positive duration."""


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``1h``, ``1h30m`` or plain seconds -> seconds (> 0); a one-line error otherwise."""
    cleaned = str(text).strip().lower().replace(" ", "")
    match = _DURATION.match(cleaned) if cleaned and not cleaned.startswith("-") else None
    if match is None or not any(match.groupdict().values()):
        why = "a duration must be positive" if cleaned.startswith("-") else "not a duration"
        raise BudgetError(f"--time-budget {text!r}: {why}; give e.g. {DURATION_EXAMPLES}")
    hours, minutes, seconds = (float(match.group(unit) or 0) for unit in "hms")
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise BudgetError(f"--time-budget {text!r}: the budget must be more than 0; give e.g. {DURATION_EXAMPLES}")
    return total


def format_duration(seconds: float) -> str:
    """600 -> ``10m``, 5400 -> ``1h30m``, 90 -> ``1m30s``."""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if n) or "0s"


def epoch_seconds(config: dict[str, Any], n_train: int, n_val: int, cores: int = 1) -> float:
    """Predicted seconds of one epoch (training pass + validation) of ``config`` on ``cores`` CPUs."""
    layers, hidden = int(config.get("num_layers", 3)), int(config.get("hidden_size", 128))
    weights = 784 * hidden + max(layers - 1, 0) * hidden * hidden + hidden * 10 + layers * hidden + 10
    # Evaluation is a forward pass only: about a third of a training step's work per example.
    work = weights * (n_train + n_val / 3)
    return work / (WEIGHT_SAMPLES_PER_CORE_SECOND * max(cores, 1))


def typical_config(parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The middle of a space (W&B syntax): median of each list, centre of each range; for sizing, not sampling."""
    config: dict[str, Any] = {}
    for key, spec in parameters.items():
        if "value" in spec:
            config[key] = spec["value"]
        elif "values" in spec:
            values = spec["values"]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            config[key] = statistics.median_low(sorted(values)) if numeric else values[0]
        elif "min" in spec and "max" in spec:
            low, high = spec["min"], spec["max"]
            log = "log" in str(spec.get("distribution", "")) and low > 0
            config[key] = math.sqrt(low * high) if log else (low + high) / 2
    return config


def fit_max_epochs(budget_seconds: float, typical_epoch_seconds: float, max_epochs: int, grace_period: int) -> int:
    """The most epochs (up to ``max_epochs``) whose full typical trial takes at most FULL_TRIAL_SHARE of the budget."""
    fits = int((budget_seconds * FULL_TRIAL_SHARE - TRIAL_START_SECONDS) // max(typical_epoch_seconds, 1e-9))
    return max(min(fits, max_epochs), min(grace_period + 1, max_epochs))  # ASHA needs a rung to stop at


@dataclass(frozen=True)
class TrialBudget:
    """What a trial needs to size itself under a budget (sent to the trainable; the clock stays in the driver)."""

    seconds: float
    n_train: int
    n_val: int
    cores: int
    grace_period: int

    def epoch_seconds(self, config: dict[str, Any]) -> float:
        """Predicted seconds of one epoch of ``config`` on this search's data and a trial's cores."""
        return epoch_seconds(config, self.n_train, self.n_val, self.cores)

    def epochs_for(self, config: dict[str, Any], max_epochs: int) -> int:
        """The epochs of ``config`` whose full run fits FULL_TRIAL_SHARE of the budget, at most ``max_epochs``."""
        return fit_max_epochs(self.seconds, self.epoch_seconds(config), max_epochs, self.grace_period)


def first_rung_seconds(predicted_epoch_seconds: float, grace_period: int, correction: float = 1.0) -> float:
    """Seconds from a trial's start to its first ASHA rung (its first chance to be compared)."""
    return TRIAL_START_SECONDS + grace_period * predicted_epoch_seconds * correction


def correction_factor(measured: list[tuple[float, float]]) -> float:
    """Median of measured / predicted epoch seconds (1.0 before anything was measured)."""
    ratios = [seconds / predicted for seconds, predicted in measured if predicted > 0 and seconds > 0]
    return statistics.median(ratios) if ratios else 1.0
