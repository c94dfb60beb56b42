"""A W&B sweep file (or a name in ``search_spaces/``) read whole and checked, without Ray: parameters (every W&B
distribution; names and choices through config's alias tables), method, metric, early_terminate and run_cap, as
docs/sweeps.md maps them. A file that cannot be used is one error naming the file, the key and the fix.
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tune_mlp.config import (
    BOUNDS,
    CHOICES,
    HYPERPARAMETER_ALIASES,
    METRIC,
    MODE,
    REPORTED_METRICS,
    canonical_name,
    field_names,
    normalize_choice,
    value_errors,
)
from tune_mlp.errors import UserInputError

# search_spaces/ is installed as the package data tune_mlp.search_spaces, so a wheel finds the same files.
SPACES_DIR = Path(str(importlib.resources.files("tune_mlp.search_spaces")))

# The W&B schema's distributions (wandb/sweeps schema.json, deprecated forms included) -> the keys a spec of it sets.
DISTRIBUTIONS = {
    "constant": ("value",), "categorical": ("values",), "categorical_w_probabilities": ("values", "probabilities"),
    **dict.fromkeys(("int_uniform", "uniform", "q_uniform", "log_uniform", "log_uniform_values", "q_log_uniform",
                     "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values"), ("min", "max")),
    **dict.fromkeys(("normal", "q_normal", "log_normal", "q_log_normal"), ("mu", "sigma")),
    "beta": ("a", "b"), "q_beta": ("a", "b"),
}  # fmt: skip
GRID = ("constant", "categorical", "int_uniform", "q_uniform")  # what method: grid can enumerate
OWN_SAMPLER = ("categorical_w_probabilities", "normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta")
DEFAULTS = {"q": 1, "mu": 0.0, "sigma": 1.0, "a": 1.0, "b": 1.0}  # the schema's defaults
SPEC_KEYS = ("distribution", "value", "values", "probabilities", "min", "max", "q", "mu", "sigma", "a", "b")
NUMBER_KEYS = ("min", "max", "q", "mu", "sigma", "a", "b")
METHODS = ("bayes", "random", "grid")
USED_KEYS = ("parameters", "method", "metric", "early_terminate", "run_cap", "points_to_evaluate")
# Keys that describe where or how W&B launches runs, not the search: read, named once, not used.
IGNORED_KEYS = ("program", "command", "project", "entity", "name", "description", "controller", "job", "scheduler",
                "apiVersion", "kind", "image_uri")  # fmt: skip
# What a trial reports each epoch, and the names users write for it. Plain ``accuracy``/``loss`` mean the
# validation ones: a search selects on held-out data, never on train or test.
METRIC_ALIASES = {
    **dict.fromkeys(("val_acc", "validation_accuracy", "valid_accuracy", "val_accuracy", "accuracy", "acc"),
                    "val_accuracy"),
    **dict.fromkeys(("val_loss", "validation_loss", "valid_loss", "loss"), "val_loss"),
    **dict.fromkeys(("train_accuracy", "train_acc", "training_accuracy"), "train_accuracy"),
    **dict.fromkeys(("train_loss", "training_loss"), "train_loss"),
}  # fmt: skip
GOALS = {"maximize": "max", "minimize": "min", "max": "max", "min": "min"}
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")


class SearchSpaceError(UserInputError, ValueError):
    """A search-space file that cannot be used; the message names the key and the problem."""


@dataclass(frozen=True)
class Hyperband:
    """W&B hyperband as ASHA: one W&B iteration is one of our epochs (a trial reports once per epoch)."""

    grace_period: int  # min_iter, or max_iter / eta**s
    reduction_factor: float  # eta
    max_t: int | None = None  # max_iter, if given


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    parameters: dict[str, dict[str, Any]]  # our field -> checked W&B spec with 'distribution' filled in
    points_to_evaluate: list[dict[str, Any]]  # configs to try before sampling
    grid: bool = False  # method: grid: Tune walks every combination of the values

    def sampled(self) -> list[str]:
        """The keys Tune samples per trial; every other key is a constant all trials share."""
        if self.grid:  # a grid of one value is that value
            return [key for key, spec in self.parameters.items() if len(grid_values(spec)) > 1]
        return [key for key, spec in self.parameters.items() if spec["distribution"] != "constant"]

    def constants(self) -> dict[str, Any]:
        """The value of every key that is not sampled."""
        sampled = self.sampled()
        return {key: grid_values(spec)[0] for key, spec in self.parameters.items() if key not in sampled}


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
    notes: tuple[str, ...] = ()  # what was read differently from W&B, one phrase each


def load_sweep(name_or_path: str) -> Sweep:
    """Read and check the whole sweep document; any problem is one SearchSpaceError naming file, key and fix."""
    path = resolve_space_path(name_or_path)
    try:
        document = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SearchSpaceError(f"{path}: not valid YAML ({first}); fix the file's syntax") from None
    if not isinstance(document, dict):
        raise SearchSpaceError(f"{path}: expected a mapping with a 'parameters:' key, got {type(document).__name__}")
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
    method = keys.get("method", "bayes")
    if method not in METHODS:
        raise SearchSpaceError(f"{path}: method: {method!r} is not one we run (choose from {', '.join(METHODS)})")
    grid = method == "grid"
    parameters = parse_parameters(path, keys["parameters"])
    points = keys.get("points_to_evaluate") or []
    if not isinstance(points, list):
        raise SearchSpaceError(f"{path}: points_to_evaluate must be a list of configs, got {points!r}")
    points = [check_point(path, index, point, parameters) for index, point in enumerate(points)]
    if grid:
        for key, spec in parameters.items():
            if spec["distribution"] not in GRID:
                raise SearchSpaceError(
                    f"{path}: parameters.{key}: method grid needs a finite set of values, and "
                    f"{spec['distribution']} is not one; give it 'values: [...]' or use method random or bayes"
                )
        if points:
            raise SearchSpaceError(f"{path}: points_to_evaluate: a grid runs every combination; remove it or the grid")
    metric, mode, notes = _metric(path, keys.get("metric"))
    run_cap = keys.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1):
        raise SearchSpaceError(f"{path}: run_cap: must be a whole number >= 1, got {run_cap!r}")
    ignored = [key for key in keys if key in IGNORED_KEYS]
    ignored += ["run_cap (a grid runs every combination)"] if run_cap is not None and grid else []
    hyperband = _hyperband(path, keys.get("early_terminate"))
    used = tuple(key for key in keys if key in USED_KEYS)
    space = SearchSpace(path, parameters, points, grid=grid)
    return Sweep(path, space, method, metric, mode, hyperband, None if grid else run_cap, used, tuple(ignored), notes)


def _metric(path: Path, metric: Any) -> tuple[str, str, tuple[str, ...]]:
    """Our metric and mode for ``metric: {name, goal}``; without a goal, the metric's own direction."""
    if metric is None:
        return METRIC, MODE, ()
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
    return name, GOALS[goal] if goal else REPORTED_METRICS[name], tuple(notes)


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
    eta, max_iter, s = early.get("eta", 3), early.get("max_iter"), early.get("s")
    if eta <= 1 or not math.isfinite(eta):
        raise SearchSpaceError(f"{where}.eta: must be > 1, got {eta!r}")
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


def resolve_space_path(name_or_path: str) -> Path:
    """``default`` -> ``search_spaces/default.yaml``; an existing path is taken as is."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (SPACES_DIR / name_or_path, SPACES_DIR / f"{name_or_path}.yaml"):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in SPACES_DIR.glob("*.yaml")))
    raise SearchSpaceError(f"search space {name_or_path!r} not found: no such file, and not one of: {known}")


def parse_parameters(path: Path, parameters: Any) -> dict[str, dict[str, Any]]:
    """Flatten, rename to our fields and check every parameter; the result is what ``to_tune_space`` takes."""
    if not isinstance(parameters, dict) or not parameters:
        raise SearchSpaceError(f"{path}: 'parameters' must be a non-empty mapping of hyperparameter names")
    checked: dict[str, dict[str, Any]] = {}
    written: dict[str, str] = {}
    for name, spec in _flatten(path, parameters).items():
        where, last = f"{path}: parameters.{name}", name.rsplit(".", 1)[-1]
        field = canonical_name(last)
        if field is None:  # name the closest fields, reached through their aliases too
            close = difflib.get_close_matches(last.lower(), [*field_names(), *HYPERPARAMETER_ALIASES], n=5, cutoff=0.6)
            fields = list(dict.fromkeys(HYPERPARAMETER_ALIASES.get(c, c) for c in close))[:3]
            guess = f" (did you mean {' or '.join(repr(f) for f in fields)}?)" if fields else ""
            raise SearchSpaceError(
                f"{where}: unknown hyperparameter{guess}; "
                f"rename the key to one of {', '.join(field_names())} or an alias in docs/sweeps.md"
            )
        if field in written:
            raise SearchSpaceError(f"{where}: sets {field}, as parameters.{written[field]} does; keep one of them")
        written[field] = name
        checked[field] = check_parameter(where, field, spec)
    return checked


def _flatten(path: Path, parameters: dict[Any, Any], prefix: str = "") -> dict[str, Any]:
    """W&B's nested ``parameters:`` groups as dotted names (``optimizer.lr``)."""
    flat: dict[str, Any] = {}
    for key, spec in parameters.items():
        name = f"{prefix}{key}"
        if isinstance(spec, dict) and "parameters" in spec:
            inner = spec["parameters"]
            if set(spec) != {"parameters"} or not isinstance(inner, dict) or not inner:
                raise SearchSpaceError(
                    f"{path}: parameters.{name}: a nested group takes only 'parameters:' with a non-empty mapping"
                )
            flat |= _flatten(path, inner, f"{name}.")
        else:
            flat[name] = spec
    return flat


def check_parameter(where: str, field: str, spec: Any) -> dict[str, Any]:
    """One parameter's spec, checked, with numbers parsed, choices normalised and the distribution filled in."""
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where}: expected a mapping such as {{values: [...]}} or {{value: x}}, got {spec!r}")
    unknown = [str(key) for key in spec if key not in SPEC_KEYS]
    if unknown:
        raise SearchSpaceError(f"{where}: unknown key {unknown[0]!r} (a parameter takes: {', '.join(SPEC_KEYS)})")
    spec = {key: _number(where, key, value) if key in NUMBER_KEYS else value for key, value in spec.items()}
    kind = spec["distribution"] = _distribution(where, spec)
    if kind.startswith("q_"):
        spec.setdefault("q", DEFAULTS["q"])
        if spec["q"] <= 0:
            raise SearchSpaceError(f"{where}: 'q' must be > 0, got {spec['q']}")
    keys = DISTRIBUTIONS[kind]
    if kind == "constant":
        spec["value"] = _check_value(where, field, spec["value"])
    elif keys[0] == "values":  # categorical: every value, and the probabilities of a weighted one
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{where}: 'values' must be a non-empty list, got {values!r}")
        spec["values"] = [_check_value(where, field, value) for value in values]
        if kind == "categorical_w_probabilities":
            probabilities = spec.get("probabilities")
            if not isinstance(probabilities, list) or len(probabilities) != len(values):
                raise SearchSpaceError(
                    f"{where}: 'probabilities' must be a list of {len(values)} numbers, one per value"
                )
            probabilities = spec["probabilities"] = [_number(where, "probabilities", p) for p in probabilities]
            if min(probabilities) < 0 or abs(sum(probabilities) - 1.0) > 1e-6:
                total = sum(probabilities)
                raise SearchSpaceError(f"{where}: 'probabilities' must be >= 0 and sum to 1; these sum to {total:g}")
    elif keys[0] == "min":  # ordered bounds, positive where the spec needs it, values the field accepts
        low, high = spec["min"], spec["max"]
        if low >= high:
            raise SearchSpaceError(f"{where}: 'min' ({low}) must be smaller than 'max' ({high})")
        if kind.endswith("_values") and low <= 0:
            raise SearchSpaceError(f"{where}: {kind} needs min > 0, got {low}")
        if kind == "int_uniform" and not all(float(v).is_integer() for v in (low, high)):
            raise SearchSpaceError(f"{where}: int_uniform needs whole-number bounds, got min={low} max={high}")
        try:
            bounds = log_bounds(kind, low, high)
        except OverflowError:
            raise SearchSpaceError(f"{where}: {kind} takes natural-log bounds; exp({high}) overflows") from None
        if kind.startswith("q_"):  # what a draw rounds to at either end
            bounds = tuple(round(bound / spec["q"]) * spec["q"] for bound in bounds)
        for bound in bounds:
            _check_value(where, field, bound)
    else:  # normal, log_normal, beta: their parameters, and whether the field can take their draws
        stray = [key for key in spec if key not in (*keys, "q", "distribution")]
        if stray:
            takes = ", ".join(keys) + (", q" if kind.startswith("q_") else "")
            raise SearchSpaceError(f"{where}: {kind} takes {takes}, not {stray[0]!r}")
        for key in keys:
            spec.setdefault(key, DEFAULTS[key])
        if any(spec[key] <= 0 for key in keys if key != "mu"):
            raise SearchSpaceError(f"{where}: {' and '.join(keys)} must be > 0 for {kind}")
        if field in CHOICES or field == "jit_compile":
            raise SearchSpaceError(f"{where}: {field} takes choices; use 'values: [...]', not {kind}")
        # A normal without q on a field that must be > its bound would be clipped to a meaningless value.
        if kind == "normal" and BOUNDS.get(field, (None, None, False))[2]:
            raise SearchSpaceError(
                f"{where}: a normal can draw values <= 0, which {field} cannot take; use log_normal "
                "(mu = ln of the centre) or log_uniform_values"
            )
    return spec


def _number(where: str, key: str, value: Any) -> float | int:
    """A number, or a numeric string (YAML reads ``1e-3`` as a string); anything else is an error."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SearchSpaceError(f"{where}: '{key}' must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SearchSpaceError(f"{where}: '{key}' must be a finite number, got {value!r}")
    if abs(value) >= 2**53:  # past this, floats skip integers and numpy's samplers overflow
        raise SearchSpaceError(f"{where}: '{key}' is too large ({value:g}); use a value below 9e15")
    return value


def _distribution(where: str, spec: dict[str, Any]) -> str:
    """The spec's distribution, inferred from its keys as W&B does when ``distribution`` is absent."""
    kind = spec.get("distribution")
    if kind is None:
        if "value" in spec:
            return "constant"
        if "values" in spec:
            return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
        if "min" in spec and "max" in spec:
            return "int_uniform" if all(isinstance(spec[k], int) for k in ("min", "max")) else "uniform"
        raise SearchSpaceError(f"{where}: needs 'value', 'values', or 'min' and 'max' (got keys {sorted(spec)})")
    if not isinstance(kind, str) or kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SearchSpaceError(f"{where}: unknown distribution {kind!r} ({hint}choose from {', '.join(DISTRIBUTIONS)})")
    missing = [key for key in DISTRIBUTIONS[kind] if key not in spec and key not in DEFAULTS]
    if missing:
        raise SearchSpaceError(f"{where}: distribution {kind} needs {' and '.join(repr(m) for m in missing)}")
    return kind


def _check_value(where: str, field: str, value: Any) -> Any:
    """A candidate value, normalised and run through the same checks as the CLI, so it fails before Ray starts."""
    if field not in CHOICES and field != "jit_compile" and isinstance(value, str):
        value = _number(where, "value", value)
    value = normalize_choice(field, value)
    for name, message in value_errors({field: value}):
        if name == field:
            raise SearchSpaceError(f"{where}: {message}")
    return value


def check_point(path: Path, index: int, point: Any, parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A start point must set every sampled parameter to a value the space can produce."""
    where = f"{path}: points_to_evaluate[{index}]"
    if not isinstance(point, dict):
        raise SearchSpaceError(f"{where}: expected a mapping of hyperparameter values, got {point!r}")
    renamed = {canonical_name(key) or str(key): value for key, value in point.items()}
    sampled = {key for key, spec in parameters.items() if spec["distribution"] != "constant"}
    for key in sorted(set(renamed) - sampled):
        raise SearchSpaceError(f"{where}.{key}: not a sampled parameter of this space")
    for key in sorted(sampled - set(renamed)):
        raise SearchSpaceError(f"{where}: missing a value for {key!r} (every sampled parameter needs one)")
    checked = {}
    for key, value in renamed.items():
        spec = parameters[key]
        value = checked[key] = _check_value(f"{where}.{key}", key, value)
        if spec["distribution"] in OWN_SAMPLER:
            raise SearchSpaceError(f"{where}.{key}: a {spec['distribution']} parameter cannot be set by a start point")
        if "values" in spec and value not in spec["values"]:
            raise SearchSpaceError(f"{where}.{key}: {value!r} is not one of {spec['values']}")
        if "min" in spec:
            low, high = log_bounds(spec["distribution"], spec["min"], spec["max"])
            if not low <= value <= high:
                raise SearchSpaceError(f"{where}.{key}: {value!r} is outside [{low}, {high}]")
    return checked


def log_bounds(kind: str, low: float, high: float) -> tuple[float, float]:
    """The value bounds of a min/max spec: natural-log exponents for the deprecated log forms, else as written."""
    if kind in ("log_uniform", "q_log_uniform"):
        return math.exp(low), math.exp(high)
    if kind == "inv_log_uniform":  # X = exp(-U(min, max))
        return math.exp(-high), math.exp(-low)
    return low, high


def grid_values(spec: dict[str, Any]) -> list[Any]:
    """The values ``method: grid`` walks, as W&B's grid search enumerates them."""
    kind = spec["distribution"]
    if kind == "constant":
        return [spec["value"]]
    if kind == "int_uniform":
        return list(range(int(spec["min"]), int(spec["max"]) + 1))
    if kind == "q_uniform":  # W&B: np.arange(min, max, q), so max itself is left out
        return [cast_to_q(v, spec["q"]) for v in np.arange(spec["min"], spec["max"], spec["q"]).tolist()]
    return list(spec["values"])


def cast_to_q(value: float, q: float) -> float:
    return int(round(value)) if isinstance(q, int) else value  # W&B: an integer q gives integers
