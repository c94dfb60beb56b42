"""Search spaces as data: the ``parameters:`` of a W&B sweep file, checked and turned into a Tune space here.

Every distribution of the W&B spec is taken (``tune_mlp.search.distributions``), ``q`` defaults to 1, numeric
strings (``1e-3``, which PyYAML reads as a string) are numbers where the field is numeric, nested
``parameters:`` groups are flattened, and names and choice values go through config's alias tables
(``lr`` -> ``learning_rate``, ``ReLU`` -> ``relu``). The rest of the sweep document (method, metric,
early_terminate, run_cap) is ``tune_mlp.search.sweep``'s. One key of our own, ``points_to_evaluate:``, lists
complete configs HyperOpt tries first. A file that cannot be used is an error naming the file, the key and
the fix, before Ray starts.
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
from ray.tune.search.sample import Domain

from tune_mlp.config import CHOICES, HYPERPARAMETER_ALIASES, canonical_name, field_names, normalize_choice, value_errors
from tune_mlp.errors import UserInputError
from tune_mlp.search.distributions import (
    DEFAULTS,
    DISTRIBUTIONS,
    OWN_SAMPLER,
    can_reach_open_bound,
    grid_values,
    log_bounds,
    to_domain,
)

# search_spaces/ sits at the top of the repository and is installed as the package data
# tune_mlp.search_spaces (pyproject's package-dir), so a wheel finds the same files.
SPACES_DIR = Path(str(importlib.resources.files("tune_mlp.search_spaces")))


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
    parameters: dict[str, dict[str, Any]]  # our field -> checked W&B spec with 'distribution' filled in
    points_to_evaluate: list[dict[str, Any]]  # configs to try before sampling
    grid: bool = False  # method: grid: Tune walks every combination of the values

    def tune_space(self) -> dict[str, Any]:
        return to_tune_space(self.parameters, grid=self.grid)


def sampled_keys(tune_space: dict[str, Any]) -> list[str]:
    """The keys Tune samples per trial; every other key is a constant all trials share."""
    return [
        key
        for key, value in tune_space.items()
        if isinstance(value, Domain) or (isinstance(value, dict) and "grid_search" in value)
    ]


def read_document(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SearchSpaceError(f"{path}: not valid YAML ({first}); fix the file's syntax") from None
    if not isinstance(document, dict):
        raise SearchSpaceError(f"{path}: expected a mapping with a 'parameters:' key, got {type(document).__name__}")
    return document


def parse_parameters(path: Path, parameters: Any) -> dict[str, dict[str, Any]]:
    """Flatten, rename to our fields and check every parameter; the result is what ``to_tune_space`` takes."""
    if not isinstance(parameters, dict) or not parameters:
        raise SearchSpaceError(f"{path}: 'parameters' must be a non-empty mapping of hyperparameter names")
    checked: dict[str, dict[str, Any]] = {}
    written: dict[str, str] = {}
    for name, spec in _flatten(path, parameters).items():
        where = f"{path}: parameters.{name}"
        field = canonical_name(name.rsplit(".", 1)[-1])
        if field is None:
            raise SearchSpaceError(f"{where}: unknown hyperparameter{_nearest(name.rsplit('.', 1)[-1])}")
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


def _nearest(name: str) -> str:
    """`` (did you mean 'hidden_size'?); rename it to ...``: the closest fields, via their aliases too."""
    close = difflib.get_close_matches(str(name).lower(), [*field_names(), *HYPERPARAMETER_ALIASES], n=5, cutoff=0.6)
    fields = list(dict.fromkeys(HYPERPARAMETER_ALIASES.get(c, c) for c in close))[:3]
    guess = f" (did you mean {' or '.join(repr(f) for f in fields)}?)" if fields else ""
    return f"{guess}; rename the key to one of {', '.join(field_names())} or an alias in docs/sweeps.md"


SPEC_KEYS = ("distribution", "value", "values", "probabilities", "min", "max", "q", "mu", "sigma", "a", "b")
NUMBER_KEYS = ("min", "max", "q", "mu", "sigma", "a", "b")


def check_parameter(where: str, field: str, spec: Any) -> dict[str, Any]:
    """One parameter's spec, checked, with numbers parsed, choices normalised and the distribution filled in."""
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where}: expected a mapping such as {{values: [...]}} or {{value: x}}, got {spec!r}")
    unknown = [str(key) for key in spec if key not in SPEC_KEYS]
    if unknown:
        raise SearchSpaceError(f"{where}: unknown key {unknown[0]!r} (a parameter takes: {', '.join(SPEC_KEYS)})")
    spec = {key: _number(where, key, value) if key in NUMBER_KEYS else value for key, value in spec.items()}
    kind = _distribution(where, spec)
    spec["distribution"] = kind
    if kind.startswith("q_"):
        spec.setdefault("q", DEFAULTS["q"])
        if spec["q"] <= 0:
            raise SearchSpaceError(f"{where}: 'q' must be > 0, got {spec['q']}")
    if kind == "constant":
        spec["value"] = _check_value(where, field, spec["value"])
    elif kind.startswith("categorical"):
        _check_values(where, field, spec)
    elif kind.endswith("normal") or kind.endswith("beta"):
        _check_shape(where, field, spec)
    else:
        _check_range(where, field, spec)
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
            ints = all(isinstance(spec[k], int) for k in ("min", "max"))
            return "int_uniform" if ints else "uniform"
        raise SearchSpaceError(f"{where}: needs 'value', 'values', or 'min' and 'max' (got keys {sorted(spec)})")
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SearchSpaceError(f"{where}: unknown distribution {kind!r} ({hint}choose from {', '.join(DISTRIBUTIONS)})")
    needs = {"constant": ("value",), "categorical": ("values",), "categorical_w_probabilities": ("values",)}
    needs["categorical_w_probabilities"] += ("probabilities",)
    if not (kind.endswith("normal") or kind.endswith("beta") or kind in needs):
        needs[kind] = ("min", "max")
    missing = [key for key in needs.get(kind, ()) if key not in spec]
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


def _check_values(where: str, field: str, spec: dict[str, Any]) -> None:
    values = spec["values"]
    if not isinstance(values, list) or not values:
        raise SearchSpaceError(f"{where}: 'values' must be a non-empty list, got {values!r}")
    spec["values"] = [_check_value(where, field, value) for value in values]
    if spec["distribution"] == "categorical_w_probabilities":
        probabilities = spec.get("probabilities")
        if not isinstance(probabilities, list) or len(probabilities) != len(values):
            raise SearchSpaceError(f"{where}: 'probabilities' must be a list of {len(values)} numbers, one per value")
        spec["probabilities"] = [_number(where, "probabilities", p) for p in probabilities]
        if min(spec["probabilities"]) < 0 or abs(sum(spec["probabilities"]) - 1.0) > 1e-6:
            total = sum(spec["probabilities"])
            raise SearchSpaceError(f"{where}: 'probabilities' must be >= 0 and sum to 1; these sum to {total:g}")


def _check_shape(where: str, field: str, spec: dict[str, Any]) -> None:
    """normal / log_normal / beta families: their parameters, and whether the field can take their draws."""
    names = ("a", "b") if spec["distribution"].endswith("beta") else ("mu", "sigma")
    stray = [key for key in spec if key not in (*names, "q", "distribution")]
    if stray:
        takes = ", ".join(names) + (", q" if spec["distribution"].startswith("q_") else "")
        raise SearchSpaceError(f"{where}: {spec['distribution']} takes {takes}, not {stray[0]!r}")
    for name in names:
        spec.setdefault(name, DEFAULTS[name])
    if spec.get("sigma", 1.0) <= 0 or spec.get("a", 1.0) <= 0 or spec.get("b", 1.0) <= 0:
        raise SearchSpaceError(f"{where}: {' and '.join(names)} must be > 0 for {spec['distribution']}")
    if field in CHOICES or field == "jit_compile":
        raise SearchSpaceError(f"{where}: {field} takes choices; use 'values: [...]', not {spec['distribution']}")
    if can_reach_open_bound(field, spec):
        raise SearchSpaceError(
            f"{where}: a normal can draw values <= 0, which {field} cannot take; use log_normal "
            "(mu = ln of the centre) or log_uniform_values"
        )


def _check_range(where: str, field: str, spec: dict[str, Any]) -> None:
    """min/max families: ordered bounds, positive where the spec needs it, values the field accepts."""
    kind, low, high = spec["distribution"], spec["min"], spec["max"]
    if low >= high:
        raise SearchSpaceError(f"{where}: 'min' ({low}) must be smaller than 'max' ({high})")
    if kind.endswith("_values") and low <= 0:
        raise SearchSpaceError(f"{where}: {kind} needs min > 0, got {low}")
    if kind == "int_uniform" and not all(float(v).is_integer() for v in (low, high)):
        raise SearchSpaceError(f"{where}: int_uniform needs whole-number bounds, got min={low} max={high}")
    try:
        bounds = log_bounds(kind, low, high) if "log" in kind else (low, high)
    except OverflowError:
        raise SearchSpaceError(f"{where}: {kind} takes natural-log bounds; exp({high}) overflows") from None
    if kind.startswith("q_"):  # what a draw rounds to at either end
        bounds = tuple(round(bound / spec["q"]) * spec["q"] for bound in bounds)
    for bound in bounds:
        _check_value(where, field, bound)


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


def to_tune_space(parameters: dict[str, dict[str, Any]], grid: bool = False) -> dict[str, Any]:
    """Tune sampling objects for each checked parameter; constants stay plain values."""
    if grid:
        return {
            key: tune.grid_search(values) if len(values := grid_values(spec)) > 1 else values[0]
            for key, spec in parameters.items()
        }
    return {key: to_domain(key, spec) for key, spec in parameters.items()}
