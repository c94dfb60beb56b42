"""A search's time budget as plain numbers: ``--time-budget`` parsed, and what fits in it.

Pure functions (no Ray, no TensorFlow): the Tune pieces that enforce a budget are in
``tune_mlp.search.budget_tune``. The cost model predicts a trial's epoch time from its parameter count,
calibrated on this training loop (3x128 at ~140k samples/s on 2 cores); a running search corrects
it with the epoch times it measures.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

from tune_mlp.errors import UserInputError

DURATION_EXAMPLES = "90s, 10m, 1h or 1h30m"
_DURATION = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")
# Weights x examples per CPU-second of the compiled loop (forward + backward + update): the
# measured 3x128 rate (134k weights, ~140k samples/s on 2 cores), rounded down per core.
WEIGHT_SAMPLES_PER_CORE_SECOND = 1.0e10
# A trial's start (actor reuse, XLA compile of the epoch graph) on top of its first epoch.
TRIAL_START_SECONDS = 5.0
# A full-length trial of the space's typical config may take at most this share of the budget: on
# 2 cores the first trials cannot be stopped by ASHA (no peers yet), so they must not eat the budget,
# yet the best trials need their epochs (a quarter capped 5-minute searches at 13 epochs: test 0.895).
FULL_TRIAL_SHARE = 0.5


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
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def weight_count(config: dict[str, Any]) -> int:
    """Weights of the 784 -> num_layers x hidden_size -> 10 MLP (what an epoch's cost scales with)."""
    layers, hidden = int(config.get("num_layers", 3)), int(config.get("hidden_size", 128))
    return 784 * hidden + max(layers - 1, 0) * hidden * hidden + hidden * 10 + layers * hidden + 10


def epoch_seconds(config: dict[str, Any], n_train: int, n_val: int, cores: int = 1) -> float:
    """Predicted seconds of one epoch (training pass + validation) of ``config`` on ``cores`` CPUs."""
    # Evaluation is a forward pass only: about a third of a training step's work per example.
    work = weight_count(config) * (n_train + n_val / 3)
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
    """The most epochs a trial gets so that a full typical trial takes at most FULL_TRIAL_SHARE of the budget.

    Never below ``grace_period + 1`` (ASHA needs one rung to stop at) and never above ``max_epochs``.
    """
    fits = int((budget_seconds * FULL_TRIAL_SHARE - TRIAL_START_SECONDS) // max(typical_epoch_seconds, 1e-9))
    return max(min(fits, max_epochs), min(grace_period + 1, max_epochs))


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
