"""Search spaces as data: YAML in the W&B sweep ``parameters:`` syntax, turned into a Tune space here.

An existing W&B sweep file works as is (``method``/``metric`` are ignored: HyperOpt and
``val_accuracy`` decide those). One key of our own, ``points_to_evaluate:``, lists complete
configs HyperOpt tries first (a known-good start, e.g. the study's best run). A malformed file is
an error naming the file, the key and what is wrong, before Ray starts.
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ray import tune

from tune_mlp.config import field_names, value_errors
from tune_mlp.errors import UserInputError

# search_spaces/ sits at the top of the repository and is installed as the package data
# tune_mlp.search_spaces (pyproject's package-dir), so a wheel finds the same files.
# A source checkout uses its own folder: an editable install maps the package data to whichever
# checkout was installed, which is not this one in a second git worktree.
_CHECKOUT_SPACES = Path(__file__).resolve().parent.parent / "search_spaces"
SPACES_DIR = (
    _CHECKOUT_SPACES
    if (_CHECKOUT_SPACES / "default.yaml").is_file()
    else Path(str(importlib.resources.files("tune_mlp.search_spaces")))
)
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform_values",
    "q_log_uniform_values",
    "log_uniform",
    "normal",
)


class SearchSpaceError(UserInputError, ValueError):
    """A search-space file that cannot be used; the message names the key and the problem."""


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


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    parameters: dict[str, dict[str, Any]]  # checked, W&B sweep syntax
    points_to_evaluate: list[dict[str, Any]]  # configs to try before sampling

    def tune_space(self) -> dict[str, Any]:
        return to_tune_space(self.parameters)

    def without(self, key: str) -> SearchSpace:
        """The same space with ``key`` left to its default (and out of the start points)."""
        points = [{k: v for k, v in point.items() if k != key} for point in self.points_to_evaluate]
        return SearchSpace(self.path, {k: v for k, v in self.parameters.items() if k != key}, points)


def sampled_keys(tune_space: dict[str, Any]) -> list[str]:
    """The keys Tune samples per trial; every other key is a constant all trials share."""
    from ray.tune.search.sample import Domain

    return [key for key, value in tune_space.items() if isinstance(value, Domain)]


def load_space(name_or_path: str) -> SearchSpace:
    path = resolve_space_path(name_or_path)
    parameters = load_space_file(name_or_path)
    document = yaml.safe_load(path.read_text())
    points = document.get("points_to_evaluate", []) if isinstance(document, dict) else []
    if not isinstance(points, list):
        raise SearchSpaceError(f"{path}: points_to_evaluate must be a list of configs, got {points!r}")
    for index, point in enumerate(points):
        _check_point(path, index, point, parameters)
    return SearchSpace(path, parameters, points)


def _check_point(path: Path, index: int, point: Any, parameters: dict[str, dict[str, Any]]) -> None:
    """A start point must set every sampled parameter to a value the space can produce."""
    where = f"{path}: points_to_evaluate[{index}]"
    if not isinstance(point, dict):
        raise SearchSpaceError(f"{where}: expected a mapping of hyperparameter values, got {point!r}")
    sampled = {key for key, spec in parameters.items() if _distribution(key, spec) != "constant"}
    for key in sorted(set(point) - sampled):
        raise SearchSpaceError(f"{where}.{key}: not a sampled parameter of this space")
    for key in sorted(sampled - set(point)):
        raise SearchSpaceError(f"{where}: missing a value for {key!r} (every sampled parameter needs one)")
    for key, value in point.items():
        spec = parameters[key]
        if "values" in spec and value not in spec["values"]:
            raise SearchSpaceError(f"{where}.{key}: {value!r} is not one of {spec['values']}")
        if "min" in spec and not (spec["min"] <= value <= spec["max"]):
            raise SearchSpaceError(f"{where}.{key}: {value!r} is outside [{spec['min']}, {spec['max']}]")


def load_space_file(name_or_path: str) -> dict[str, dict[str, Any]]:
    """The checked ``parameters`` mapping of a space file."""
    path = resolve_space_path(name_or_path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SearchSpaceError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise SearchSpaceError(f"{path}: expected a mapping with a 'parameters:' key, got {type(document).__name__}")
    parameters = document.get("parameters", {k: v for k, v in document.items() if k != "points_to_evaluate"})
    if not isinstance(parameters, dict) or not parameters:
        raise SearchSpaceError(f"{path}: 'parameters' must be a non-empty mapping of hyperparameter names")
    for key, spec in parameters.items():
        _check_parameter(path, key, spec)
    return parameters


def _check_parameter(path: Path, key: Any, spec: Any) -> None:
    where = f"{path}: parameters.{key}"
    if key not in field_names():
        close = difflib.get_close_matches(str(key), field_names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(field_names())})"
        raise SearchSpaceError(f"{where}: unknown hyperparameter{hint}")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where}: expected a mapping such as {{values: [...]}} or {{value: x}}, got {spec!r}")
    kind = _distribution(where, spec)
    if kind in ("constant", "categorical"):
        candidates = [spec["value"]] if kind == "constant" else spec["values"]
        if kind == "categorical" and (not isinstance(candidates, list) or not candidates):
            raise SearchSpaceError(f"{where}: 'values' must be a non-empty list, got {candidates!r}")
        for value in candidates:
            _check_value(where, key, value)
    elif kind == "normal":
        for name in ("mu", "sigma"):
            if not isinstance(spec.get(name), (int, float)):
                raise SearchSpaceError(f"{where}: distribution normal needs a number '{name}'")
    else:
        low, high = spec.get("min"), spec.get("max")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SearchSpaceError(f"{where}: 'min' and 'max' must both be numbers, got min={low!r} max={high!r}")
        if low >= high:
            raise SearchSpaceError(f"{where}: 'min' ({low}) must be smaller than 'max' ({high})")
        if kind in ("log_uniform_values", "q_log_uniform_values") and low <= 0:
            raise SearchSpaceError(f"{where}: {kind} needs min > 0, got {low}")
        if kind.startswith("q_") and not (isinstance(spec.get("q"), (int, float)) and spec["q"] > 0):
            raise SearchSpaceError(f"{where}: {kind} needs a positive 'q'")
        if kind != "log_uniform":  # log_uniform's bounds are exponents, not values
            for value in (low, high):
                _check_value(where, key, int(value) if kind == "int_uniform" else value)


def _distribution(where: str, spec: dict[str, Any]) -> str:
    kind = spec.get("distribution")
    if kind is None:
        if "value" in spec:
            return "constant"
        if "values" in spec:
            return "categorical"
        if "min" in spec and "max" in spec:
            ints = isinstance(spec["min"], int) and isinstance(spec["max"], int)
            return "int_uniform" if ints else "uniform"
        raise SearchSpaceError(f"{where}: needs 'value', 'values', or 'min' and 'max' (got keys {sorted(spec)})")
    if kind not in DISTRIBUTIONS:
        raise SearchSpaceError(f"{where}: unknown distribution {kind!r} (choose from {', '.join(DISTRIBUTIONS)})")
    if kind == "categorical" and "values" not in spec:
        raise SearchSpaceError(f"{where}: distribution categorical needs 'values'")
    if kind == "constant" and "value" not in spec:
        raise SearchSpaceError(f"{where}: distribution constant needs 'value'")
    return kind


def _check_value(where: str, key: str, value: Any) -> None:
    """Run a candidate value through the same checks as the CLI, so a bad choice fails before Ray starts."""
    for name, message in value_errors({key: value}):
        if name == key:
            raise SearchSpaceError(f"{where}: {message}")


def to_tune_space(parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tune sampling objects for each checked parameter; constants stay plain values."""
    space: dict[str, Any] = {}
    for key, spec in parameters.items():
        kind = _distribution(key, spec)
        low, high = spec.get("min"), spec.get("max")
        if kind == "constant":
            space[key] = spec["value"]
        elif kind == "categorical":
            space[key] = tune.choice(spec["values"])
        elif kind == "int_uniform":
            space[key] = tune.randint(int(low), int(high) + 1)  # W&B's max is inclusive, Tune's is not
        elif kind == "uniform":
            space[key] = tune.uniform(low, high)
        elif kind == "q_uniform":
            space[key] = tune.quniform(low, high, spec["q"])
        elif kind == "log_uniform_values":
            space[key] = tune.loguniform(low, high)
        elif kind == "q_log_uniform_values":
            space[key] = tune.qloguniform(low, high, spec["q"])
        elif kind == "log_uniform":
            space[key] = tune.loguniform(math.exp(low), math.exp(high))
        elif kind == "normal":
            space[key] = tune.randn(spec["mu"], spec["sigma"])
    return space
