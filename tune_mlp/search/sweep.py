"""A W&B sweep file read whole: what to search (parameters) and how (method, metric, early_terminate, run_cap).

    python -m tune_mlp.search --space my_sweep.yaml --dry-run     # what the file became, then exit

``load_sweep`` reads the document once into a ``Sweep``; ``tune_mlp.search.options.search_plan`` combines it
with the command line (flags given there win) into a ``SearchPlan``; ``describe_plan`` is the ``--dry-run`` text and
``keys_line`` the one line a search prints about the file's keys. The mapping is documented in
docs/sweeps.md.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune.search.sample import Categorical, Domain, Integer, Normal, Quantized

from tune_mlp.config import METRIC, MODE, REPORTED_METRICS
from tune_mlp.search.distributions import DISCRETE, SweepDistribution
from tune_mlp.search.space import (
    SearchSpace,
    SearchSpaceError,
    check_point,
    parse_parameters,
    read_document,
    resolve_space_path,
)

METHODS = ("bayes", "random", "grid")
# Keys that describe where or how W&B launches runs, not the search: read, named once, not used.
IGNORED_KEYS = (
    "program",
    "command",
    "project",
    "entity",
    "name",
    "description",
    "controller",
    "job",
    "scheduler",
    "apiVersion",
    "kind",
    "image_uri",
)
USED_KEYS = ("parameters", "method", "metric", "early_terminate", "run_cap", "points_to_evaluate")
# What a trial reports each epoch (trainer.EpochResult), and the names users write for it. Plain
# ``accuracy``/``loss`` mean the validation ones: a search selects on held-out data, never on train or test.
METRIC_ALIASES = {
    **dict.fromkeys(
        ("val_acc", "validation_accuracy", "valid_accuracy", "val_accuracy", "accuracy", "acc"), "val_accuracy"
    ),
    **dict.fromkeys(("val_loss", "validation_loss", "valid_loss", "loss"), "val_loss"),
    **dict.fromkeys(("train_accuracy", "train_acc", "training_accuracy"), "train_accuracy"),
    **dict.fromkeys(("train_loss", "training_loss"), "train_loss"),
}
GOALS = {"maximize": "max", "minimize": "min", "max": "max", "min": "min"}
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")


@dataclass(frozen=True)
class Hyperband:
    """W&B hyperband as ASHA: one W&B iteration is one of our epochs (a trial reports once per epoch)."""

    grace_period: int  # min_iter, or max_iter / eta**s
    reduction_factor: float  # eta
    max_t: int | None = None  # max_iter, if given


@dataclass(frozen=True)
class Sweep:
    path: Path
    space: SearchSpace
    method: str = "bayes"
    metric: str = METRIC
    mode: str = MODE
    hyperband: Hyperband | None = None
    run_cap: int | None = None
    used: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())  # what was read differently from W&B, one phrase each


def load_sweep(name_or_path: str) -> Sweep:
    """Read and check the whole sweep document; any problem is one SearchSpaceError naming file, key and fix."""
    path = resolve_space_path(name_or_path)
    document = read_document(path)
    keys = {str(key): value for key, value in document.items()}
    if "parameters" not in keys and not set(keys) & (set(USED_KEYS) | set(IGNORED_KEYS)):
        keys = {"parameters": keys}  # a bare mapping of parameters
    for key in keys:
        if key not in USED_KEYS + IGNORED_KEYS:
            close = difflib.get_close_matches(key, USED_KEYS + IGNORED_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SearchSpaceError(f"{path}: {key}: not a sweep key ({hint}we read: {', '.join(USED_KEYS)})")
    if "parameters" not in keys:
        raise SearchSpaceError(f"{path}: no 'parameters:' key; add the hyperparameters to search under it")
    method = _method(path, keys.get("method", "bayes"))
    parameters = parse_parameters(path, keys["parameters"])
    points = keys.get("points_to_evaluate") or []
    if not isinstance(points, list):
        raise SearchSpaceError(f"{path}: points_to_evaluate must be a list of configs, got {points!r}")
    points = [check_point(path, index, point, parameters) for index, point in enumerate(points)]
    if method == "grid":
        _check_grid(path, parameters, points)
    metric, mode, notes = _metric(path, keys.get("metric"))
    run_cap = _run_cap(path, keys.get("run_cap"))
    ignored = [key for key in keys if key in IGNORED_KEYS]
    if run_cap is not None and method == "grid":
        ignored.append("run_cap (a grid runs every combination)")
    return Sweep(
        path=path,
        space=SearchSpace(path, parameters, points, grid=method == "grid"),
        method=method,
        metric=metric,
        mode=mode,
        hyperband=_hyperband(path, keys.get("early_terminate")),
        run_cap=None if method == "grid" else run_cap,
        used=tuple(key for key in keys if key in USED_KEYS),
        ignored=tuple(ignored),
        notes=tuple(notes),
    )


def _method(path: Path, method: Any) -> str:
    if method not in METHODS:
        raise SearchSpaceError(f"{path}: method: {method!r} is not one we run (choose from {', '.join(METHODS)})")
    return method


def _check_grid(path: Path, parameters: dict[str, dict[str, Any]], points: list[Any]) -> None:
    for key, spec in parameters.items():
        if spec["distribution"] not in DISCRETE or spec["distribution"] == "categorical_w_probabilities":
            raise SearchSpaceError(
                f"{path}: parameters.{key}: method grid needs a finite set of values, and "
                f"{spec['distribution']} is not one; give it 'values: [...]' or use method random or bayes"
            )
    if points:
        raise SearchSpaceError(f"{path}: points_to_evaluate: a grid runs every combination; remove it or the grid")


def _metric(path: Path, metric: Any) -> tuple[str, str, list[str]]:
    """Our metric and mode for ``metric: {name, goal}``; without a goal, the metric's own direction."""
    if metric is None:
        return METRIC, MODE, []
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise SearchSpaceError(f"{path}: metric: expected {{name: val_accuracy, goal: maximize}}, got {metric!r}")
    name = METRIC_ALIASES.get(metric["name"].strip().lower().replace("-", "_").replace("/", "_"))
    if name is None:
        raise SearchSpaceError(
            f"{path}: metric.name: {metric['name']!r} is not reported by our trials; "
            f"use one of {', '.join(REPORTED_METRICS)}"
        )
    goal = metric.get("goal")
    if goal is not None and goal not in GOALS:
        raise SearchSpaceError(f"{path}: metric.goal: {goal!r} must be maximize or minimize")
    notes = [f"metric.{key} ignored" for key in metric if key not in ("name", "goal")]
    if goal is None:
        notes.append(f"no metric.goal: {REPORTED_METRICS[name]}imize {name} (W&B would minimize)")
    return name, GOALS[goal] if goal else REPORTED_METRICS[name], notes


def _run_cap(path: Path, run_cap: Any) -> int | None:
    if run_cap is None:
        return None
    if isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1:
        raise SearchSpaceError(f"{path}: run_cap: must be a whole number >= 1, got {run_cap!r}")
    return run_cap


def _hyperband(path: Path, early: Any) -> Hyperband | None:
    """``early_terminate: {type: hyperband, min_iter | max_iter + s, eta}`` as ASHA's parameters."""
    if early is None:
        return None
    where = f"{path}: early_terminate"
    if not isinstance(early, dict) or early.get("type") != "hyperband":
        raise SearchSpaceError(f"{where}: only {{type: hyperband, min_iter: N, eta: 3}} is supported, got {early!r}")
    unknown = [str(key) for key in early if key not in HYPERBAND_KEYS]
    if unknown:
        raise SearchSpaceError(f"{where}.{unknown[0]}: not a hyperband key (use {', '.join(HYPERBAND_KEYS)})")
    for key in ("min_iter", "max_iter", "s", "eta"):
        value = early.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise SearchSpaceError(f"{where}.{key}: must be a positive number, got {value!r}")
    eta = early.get("eta", 3)
    if eta <= 1 or not math.isfinite(eta):
        raise SearchSpaceError(f"{where}.eta: must be > 1, got {eta!r}")
    max_iter, s = early.get("max_iter"), early.get("s")
    if early.get("min_iter") is not None:
        grace = early["min_iter"]
    elif max_iter is not None and s is not None:
        grace = max_iter / eta**s  # W&B's first bracket, counting back s rungs from max_iter
    else:
        raise SearchSpaceError(f"{where}: hyperband needs min_iter, or max_iter and s")
    if max_iter is not None and (not float(max_iter).is_integer() or max_iter > 10**6):
        raise SearchSpaceError(f"{where}.max_iter: must be a whole number of epochs, got {max_iter!r}")
    if grace > 10**6:
        raise SearchSpaceError(f"{where}.min_iter: {grace!r} epochs is more than any trial trains")
    return Hyperband(max(1, int(grace)), eta, None if max_iter is None else int(max_iter))


@dataclass(frozen=True)
class SearchPlan:
    """What the search driver runs: searcher, metric, scheduler and sample count, file and flags combined."""

    sweep: Sweep
    searcher: str  # hyperopt_tpe | random | grid
    metric: str
    mode: str
    samples: int  # Tune's num_samples (a grid runs every combination once per sample); -1: until the budget ends
    trials: int  # trials asked for: samples, or samples x combinations for a grid; -1: until the budget ends
    max_epochs: int  # ASHA max_t and each trial's epoch budget
    grace_period: int
    reduction_factor: float

    @property
    def until_budget(self) -> bool:
        """Trials start until the time budget ends (no count was asked for)."""
        return self.samples == -1

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
            "scheduler": {
                "type": "asha",
                "time_attr": "epoch",
                "max_t": self.max_epochs,
                "grace_period": self.grace_period,
                "reduction_factor": self.reduction_factor,
                "from_early_terminate": self.sweep.hyperband is not None,
            },
            "used_keys": list(self.sweep.used),
            "ignored_keys": list(self.sweep.ignored),
        }


SEARCHERS = {"bayes": "hyperopt_tpe", "random": "random", "grid": "grid"}


def keys_line(sweep: Sweep) -> str:
    """The one line a search prints about the file: which keys it used and which it ignored."""
    ignored = f"; ignored: {', '.join(sweep.ignored)} (not search settings)" if sweep.ignored else ""
    notes = f"; note: {'; '.join(sweep.notes)}" if sweep.notes else ""
    return f"sweep file {sweep.path}: used {', '.join(sweep.used)}{ignored}{notes}"


def describe_plan(plan: SearchPlan, initial_points: int | str, seed: int) -> str:
    """The ``--dry-run`` text: the Tune space, the searcher, the scheduler with its parameters, the sample count."""
    searcher = {
        "hyperopt_tpe": f"HyperOptSearch (TPE; {initial_points} random points first, seed {seed})",
        "random": "random search (Tune's BasicVariantGenerator, no searcher)",
        "grid": "grid search (tune.grid_search over every combination; no searcher)",
    }[plan.searcher]
    space = plan.sweep.space.tune_space()
    width = max(len(key) for key in space)
    lines = [
        keys_line(plan.sweep),
        f"method: {plan.sweep.method} -> {searcher}",
        f"metric: {plan.metric} ({plan.mode})",
        f"scheduler: ASHA(time_attr=epoch, max_t={plan.max_epochs}, grace_period={plan.grace_period}, "
        f"reduction_factor={plan.reduction_factor})",
        samples_line(plan),
        "space:",
        *(f"  {key:<{width}}  {describe_value(value)}" for key, value in space.items()),
    ]
    if plan.sweep.space.points_to_evaluate:
        lines.append(f"points_to_evaluate: {len(plan.sweep.space.points_to_evaluate)} start point(s)")
    return "\n".join(lines)


def samples_line(plan: SearchPlan) -> str:
    if plan.until_budget:
        return "samples: until the time budget ends (--samples N caps them)"
    grid = f" x grid of {plan.trials // plan.samples} = {plan.trials} trials" if plan.searcher == "grid" else ""
    return f"samples: {plan.samples}{grid}"


def describe_value(value: Any) -> str:
    """One Tune space entry in words: ``loguniform [0.0001, 0.1]``, ``choice ['adam', 'sgd']``, a constant."""
    if isinstance(value, dict) and "grid_search" in value:
        return f"grid {value['grid_search']}"
    if isinstance(value, SweepDistribution):
        weighted = value.spec["distribution"] == "categorical_w_probabilities"
        return value.domain_str + ("" if weighted else ", clipped to the field's range")
    if isinstance(value, Categorical):
        return f"choice {value.categories}"
    if not isinstance(value, Domain):
        return f"constant {value!r}"
    sampler = value.get_sampler()
    q = f", q={sampler.q}" if isinstance(sampler, Quantized) else ""
    inner = sampler.get_sampler() if isinstance(sampler, Quantized) else sampler
    if isinstance(inner, Normal):
        return f"normal(mean={inner.mean}, sd={inner.sd}{q})"
    kind = "loguniform" if "Log" in type(inner).__name__ else "uniform"
    upper = value.upper - 1 if isinstance(value, Integer) and not q else value.upper
    return f"{'int ' if isinstance(value, Integer) else ''}{kind} [{value.lower}, {upper}]{q}"
