"""The checked space (``tune_mlp.search.space``) as Tune's ``param_space``: Tune's own domains where Tune has them,
a ``SweepDistribution`` (searched as a quantile, docs/sweeps.md) for the rest of W&B's distributions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search.sample import Categorical, Domain, Integer, Quantized, Sampler

from tune_mlp.config import BOUNDS, INT_FIELDS
from tune_mlp.search.space import DEFAULTS, DISTRIBUTIONS, OWN_SAMPLER, SearchSpace, cast_to_q, grid_values, log_bounds

LARGEST = 2.0**53  # the largest draw: past it floats skip integers (space.py refuses such bounds too)


def to_tune_space(space: SearchSpace) -> dict[str, Any]:
    """Tune sampling objects for each checked parameter; constants stay plain values."""
    if space.grid:
        return {key: tune.grid_search(values) if len(values := grid_values(spec)) > 1 else values[0]
                for key, spec in space.parameters.items()}  # fmt: skip
    return {key: to_domain(key, spec) for key, spec in space.parameters.items()}


def sampled_keys(tune_space: dict[str, Any]) -> list[str]:
    """The keys Tune samples per trial; every other key is a constant all trials share."""
    return [key for key, value in tune_space.items() if isinstance(value, Domain) or _is_grid(value)]


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and "grid_search" in value


def to_domain(field: str, spec: dict[str, Any]) -> Any:
    """The Tune value for one checked parameter (``spec['distribution']`` filled in); constants stay plain."""
    kind, low, high, q = spec["distribution"], spec.get("min"), spec.get("max"), spec.get("q", 1)
    if kind == "constant":
        return spec["value"]
    if kind == "categorical":
        return tune.choice(spec["values"])
    if kind in OWN_SAMPLER:
        return SweepDistribution(field, spec)
    if kind == "int_uniform":
        return tune.randint(int(low), int(high) + 1)  # W&B's max is inclusive, Tune's is not
    if kind == "uniform":
        return tune.uniform(low, high)
    try:
        if kind == "q_uniform":
            return tune.quniform(low, high, q)
        low, high = log_bounds(kind, low, high)
        return tune.qloguniform(low, high, q) if kind.startswith("q_") else tune.loguniform(low, high)
    except ValueError:  # Tune wants bounds on the q grid; W&B does not, so draw these ourselves
        return SweepDistribution(field, spec)


def clip_to_field(field: str, value: float, q: float | None) -> Any:
    """Clip a drawn value into the field's range (an open lower bound becomes its first valid grid point)."""
    low, high, low_open = BOUNDS.get(field, (None, None, False))
    if low is not None and (value < low or (low_open and value <= low)):
        value = low + q if (low_open and q) else (math.nextafter(low, math.inf) if low_open else low)
    if high is not None and value > high:
        value = high
    return int(round(value)) if field in INT_FIELDS else value


class _Draw(Sampler):
    def sample(self, domain: Any, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        rng = np.random.default_rng() if random_state is None else random_state
        items = [domain.ppf(float(rng.uniform(0.0, 1.0))) for _ in range(size)]
        return items if size > 1 else items[0]


class SweepDistribution(Domain):
    """A W&B distribution Tune has no domain for, defined by its inverse CDF on (0, 1)."""

    default_sampler_cls = _Draw

    def __init__(self, field: str, spec: dict[str, Any]) -> None:
        self.field, self.spec = field, {**DEFAULTS, **spec}
        self.sampler = None

    @property
    def _log(self) -> bool:
        """A log-uniform family member: ``_scipy`` is the distribution of the value's log."""
        kind = self.spec["distribution"]
        return "log" in kind and not kind.endswith("log_normal")

    def _scipy(self) -> Any:
        """The continuous distribution under the spec (before quantizing and clipping), as a frozen scipy one."""
        from scipy import stats

        s, kind = self.spec, self.spec["distribution"]
        if kind.endswith("log_normal"):
            return stats.lognorm(s=s["sigma"], scale=math.exp(s["mu"]))
        if kind.endswith("normal"):
            return stats.norm(loc=s["mu"], scale=s["sigma"])
        if kind.endswith("beta"):
            return stats.beta(a=s["a"], b=s["b"])
        if self._log:  # uniform in the log of the value
            low, high = (math.log(bound) for bound in log_bounds(kind, s["min"], s["max"]))
            return stats.uniform(loc=low, scale=high - low)
        return stats.uniform(loc=s["min"], scale=s["max"] - s["min"])

    def ppf(self, u: float) -> Any:
        """The value at quantile ``u``: quantized with W&B's rounding, then clipped and typed for the field."""
        s, kind = self.spec, self.spec["distribution"]
        u = min(max(u, 1e-12), 1.0 - 1e-12)  # the ends map to +-inf for a normal
        if kind == "categorical_w_probabilities":
            index = int(np.searchsorted(np.cumsum(s["probabilities"]), u, side="right"))
            return s["values"][min(index, len(s["values"]) - 1)]
        with np.errstate(over="ignore"):  # an overflow is capped below
            value = float(self._scipy().ppf(u))
        value = math.exp(min(value, math.log(LARGEST))) if self._log else value
        value = min(max(value, -LARGEST), LARGEST)  # a heavy tail (sigma 1000) draws inf; rounding inf would raise
        if kind.startswith("q_"):
            value = cast_to_q(round(value / s["q"]) * s["q"], s["q"])
        return clip_to_field(self.field, value, s["q"] if kind.startswith("q_") else None)

    def quantile(self, value: Any) -> float:
        """The ``u`` whose ``ppf`` gives ``value`` back (a weighted value: the middle of its probability interval)."""
        s = self.spec
        if s["distribution"] == "categorical_w_probabilities":
            cumulative = np.cumsum([0.0, *s["probabilities"]])
            index = s["values"].index(value)
            return float((cumulative[index] + cumulative[index + 1]) / 2)
        # A quantized or clipped value: the quantile of the value itself (its ppf rounds back to the value).
        value = math.log(float(value)) if self._log else float(value)
        return float(min(max(self._scipy().cdf(value), 0.0), 1.0))

    def is_valid(self, value: Any) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        kind = self.spec["distribution"]
        names = DISTRIBUTIONS[kind] + (("q",) if kind.startswith("q_") else ())
        return f"{kind}({', '.join(f'{k}={self.spec[k]}' for k in names)})"


def sweep_parameters(spec: dict[str, Any]) -> dict[str, SweepDistribution]:
    """The parameters of a Tune space that a searcher must handle as quantiles (``SweepDistribution``)."""
    return {key: value for key, value in spec.items() if isinstance(value, SweepDistribution)}


def describe_value(value: Any) -> str:
    """One Tune space entry in words: ``loguniform [0.0001, 0.1]``, ``choice ['adam', 'sgd']``, a constant."""
    if _is_grid(value):
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
    inner = sampler.get_sampler() if isinstance(sampler, Quantized) else sampler  # to_domain makes no tune.randn
    kind = "loguniform" if "Log" in type(inner).__name__ else "uniform"
    upper = value.upper - 1 if isinstance(value, Integer) and not q else value.upper
    return f"{'int ' if isinstance(value, Integer) else ''}{kind} [{value.lower}, {upper}]{q}"
