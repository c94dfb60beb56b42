"""Every distribution of the W&B sweep spec as a Tune domain that random search samples and TPE searches.

Where Tune has the domain (uniform, log-uniform, their quantized forms, int_uniform, categorical), it is
used as is. The rest (``categorical_w_probabilities``, ``normal``/``q_normal``, ``log_normal``/``q_log_normal``,
``beta``/``q_beta``, and quantized ranges whose bounds are off the ``q`` grid, which Tune refuses) become a
``SweepDistribution``: random search draws from it directly, and a TPE searches a uniform (0, 1) quantile
mapped through the distribution's inverse CDF (``tune_mlp.search.searchers.Quantiles``), so ``method: bayes``
stays TPE for every distribution. Their draws are clipped into the field's range (a normal on ``momentum`` stays
in [0, 1]) and rounded for integer fields, so the config Tune records is the config that trains. Formulas follow
``wandb/sweeps`` ``params.py``: the deprecated ``log_uniform``/``q_log_uniform``/``inv_log_uniform`` take
natural-log bounds, and an inverse log-uniform value is itself log-uniform (1/X of a log-uniform X is).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search.sample import Domain, Sampler

from tune_mlp.config import BOUNDS, INT_FIELDS

# The W&B schema's distributions (wandb/sweeps src/sweeps/config/schema.json), deprecated forms included.
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "categorical_w_probabilities",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
)
DISCRETE = ("constant", "categorical", "categorical_w_probabilities", "int_uniform", "q_uniform")
OWN_SAMPLER = ("categorical_w_probabilities", "normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta")
DEFAULTS = {"q": 1, "mu": 0.0, "sigma": 1.0, "a": 1.0, "b": 1.0}  # the schema's defaults


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


def log_bounds(kind: str, low: float, high: float) -> tuple[float, float]:
    """The value bounds of a log-uniform family member: natural-log exponents for the deprecated forms."""
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
        return [_cast(v, spec["q"]) for v in np.arange(spec["min"], spec["max"], spec["q"]).tolist()]
    return list(spec["values"])


def _cast(value: float, q: float) -> float:
    return int(round(value)) if isinstance(q, int) else value  # W&B: an integer q gives integers


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

    def ppf(self, u: float) -> Any:
        """The value at quantile ``u``: quantized with W&B's rounding, then clipped and typed for the field."""
        from scipy import stats

        s, kind = self.spec, self.spec["distribution"]
        u = min(max(u, 1e-12), 1.0 - 1e-12)  # the ends map to +-inf for a normal
        if kind == "categorical_w_probabilities":
            index = int(np.searchsorted(np.cumsum(s["probabilities"]), u, side="right"))
            return s["values"][min(index, len(s["values"]) - 1)]
        if kind.endswith("log_normal"):
            value = float(stats.lognorm.ppf(u, s=s["sigma"], scale=math.exp(s["mu"])))
        elif kind.endswith("normal"):
            value = float(stats.norm.ppf(u, loc=s["mu"], scale=s["sigma"]))
        elif kind.endswith("beta"):
            value = float(stats.beta.ppf(u, a=s["a"], b=s["b"]))
        elif "log" in kind:
            low, high = log_bounds(kind, s["min"], s["max"])
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = s["min"] + u * (s["max"] - s["min"])
        if kind.startswith("q_"):
            value = _cast(round(value / s["q"]) * s["q"], s["q"])
        return clip_to_field(self.field, value, s["q"] if kind.startswith("q_") else None)

    def quantile(self, value: Any) -> float:
        """The ``u`` whose ``ppf`` gives ``value`` back: how a searcher that sees ``u`` is told of an earlier result.

        A weighted value maps to the middle of its probability interval; a quantized or clipped value to the
        quantile of the value itself (``ppf`` of it rounds back to the value).
        """
        from scipy import stats

        s, kind = self.spec, self.spec["distribution"]
        if kind == "categorical_w_probabilities":
            cumulative = np.cumsum([0.0, *s["probabilities"]])
            index = s["values"].index(value)
            return float((cumulative[index] + cumulative[index + 1]) / 2)
        value = float(value)
        if kind.endswith("log_normal"):
            u = stats.lognorm.cdf(value, s=s["sigma"], scale=math.exp(s["mu"]))
        elif kind.endswith("normal"):
            u = stats.norm.cdf(value, loc=s["mu"], scale=s["sigma"])
        elif kind.endswith("beta"):
            u = stats.beta.cdf(value, a=s["a"], b=s["b"])
        elif "log" in kind:
            low, high = log_bounds(kind, s["min"], s["max"])
            u = (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        else:
            u = (value - s["min"]) / (s["max"] - s["min"])
        return float(min(max(u, 0.0), 1.0))

    def is_valid(self, value: Any) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        kind = self.spec["distribution"]
        names = _ARGUMENTS[kind.removeprefix("q_")] + (("q",) if kind.startswith("q_") else ())
        args = ", ".join(f"{k}={self.spec[k]}" for k in names)
        return f"{kind}({args})"


_ARGUMENTS = {
    "categorical_w_probabilities": ("values", "probabilities"),
    "normal": ("mu", "sigma"),
    "log_normal": ("mu", "sigma"),
    "beta": ("a", "b"),
    "uniform": ("min", "max"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
}


def sweep_parameters(spec: dict[str, Any]) -> dict[str, SweepDistribution]:
    """The parameters of a Tune space that a searcher must handle as quantiles (``SweepDistribution``)."""
    return {key: value for key, value in spec.items() if isinstance(value, SweepDistribution)}


def clip_to_field(field: str, value: float, q: float | None) -> Any:
    """Clip a drawn value into the field's range (an open lower bound becomes its first valid grid point)."""
    low, high, low_open = BOUNDS.get(field, (None, None, False))
    if low is not None and (value < low or (low_open and value <= low)):
        value = low + q if (low_open and q) else (math.nextafter(low, math.inf) if low_open else low)
    if high is not None and value > high:
        value = high
    return int(round(value)) if field in INT_FIELDS else value


def can_reach_open_bound(field: str, spec: dict[str, Any]) -> bool:
    """A normal without ``q`` on a field that must be > its bound would be clipped to a meaningless value."""
    return spec["distribution"] == "normal" and BOUNDS.get(field, (None, None, False))[2]
