"""The searchers and schedulers the replay compares, built as a search run would build them.

Each entry of ``PEERS`` makes a fresh (searcher, scheduler) pair for one replay from a ``Setting``: the
worker count (Tune's ``max_concurrent_trials``: a ``ConcurrencyLimiter``), the seed, the trial length
``max_t``, and ``startup``: random trials before the model takes over (None: the library's own default).

    ours        tune_mlp.search.searchers.TPE, n_initial_points as our CLI sets it for W workers (6; above 8, W/2)
                counted in scored trials,
                no config tried twice, + ASHA (grace 3, eta 3)
    ours-repeats ours letting TPE propose a config it has tried before (HyperOpt's own behaviour)
    ours-before ours-repeats with HyperOpt's own start-up count (every suggested trial counts): before #18
    ours-g50, ours-g100  ours with HyperOpt's ``gamma`` 0.5 or 1.0 (default 0.25: the best ceil(gamma * sqrt(n))
                trials form TPE's "good" density; Optuna's is ceil(0.1 * n), up to 25)
    random      a random searcher + ASHA (same rungs)
    optuna      Ray's OptunaSearch: Optuna's TPESampler (multivariate, constant liar: Optuna 5's defaults) + ASHA
    optuna-uni  optuna with ``multivariate=False``: one dimension at a time, as HyperOpt's TPE
    bohb        TuneBOHB + HyperBandForBOHB (eta 3), BOHB's own concurrency count (paused trials free a slot)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandForBOHB, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.sample import Domain

from tune_mlp.search.plan import initial_points_for

GRACE, ETA = 3, 3  # --grace-period, --reduction-factor


@dataclass(frozen=True)
class Setting:
    workers: int
    seed: int
    max_t: int  # ASHA's max_t: the table's epochs
    startup: int | None = None  # random start-up trials; None: each library's default
    scheduler: str = "asha"  # "asha" or "fifo" (tables without learning curves)


class RandomSearcher(Searcher):
    """Independent draws from the space's domains with a seeded generator (Tune's random search)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._space: dict[str, Any] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        self._metric, self._mode, self._space = metric, mode, config
        return True

    def suggest(self, trial_id: str) -> dict[str, Any]:
        seed = int(self._rng.integers(2**31))
        return {k: v.sample(random_state=seed + i) if isinstance(v, Domain) else v
                for i, (k, v) in enumerate(self._space.items())}  # fmt: skip

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def _scheduler(setting: Setting) -> TrialScheduler:
    if setting.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="epoch", max_t=setting.max_t, grace_period=min(GRACE, setting.max_t),
                         reduction_factor=ETA)  # fmt: skip


def ours(setting: Setting, repeats: bool = False, gamma: float = 0.25) -> tuple[Searcher, TrialScheduler]:
    from tune_mlp.search.searchers import TPE

    startup = initial_points_for(setting.workers, setting.startup)  # the search's default for this many workers
    tpe = TPE(n_initial_points=startup, random_state_seed=setting.seed, gamma=gamma, repeats=repeats)
    return ConcurrencyLimiter(tpe, max_concurrent=setting.workers), _scheduler(setting)


def ours_repeats(setting: Setting) -> tuple[Searcher, TrialScheduler]:
    return ours(setting, repeats=True)


def ours_before(setting: Setting) -> tuple[Searcher, TrialScheduler]:
    """Ours as it was before the replay: Ray's HyperOptSearch as it comes (running trials count, repeats allowed)."""
    from ray.tune.search.hyperopt import HyperOptSearch

    startup = initial_points_for(setting.workers, setting.startup)
    tpe = HyperOptSearch(n_initial_points=startup, random_state_seed=setting.seed)
    return ConcurrencyLimiter(tpe, max_concurrent=setting.workers), _scheduler(setting)


def ours_gamma(gamma: float) -> Callable[[Setting], tuple[Searcher, TrialScheduler]]:
    return functools.partial(ours, gamma=gamma)


def random(setting: Setting) -> tuple[Searcher, TrialScheduler]:
    return ConcurrencyLimiter(RandomSearcher(setting.seed), max_concurrent=setting.workers), _scheduler(setting)


def optuna(setting: Setting, multivariate: bool | None = None) -> tuple[Searcher, TrialScheduler]:
    import optuna as ot
    from ray.tune.search.optuna import OptunaSearch

    ot.logging.set_verbosity(ot.logging.WARNING)
    startup = {} if setting.startup is None else {"n_startup_trials": setting.startup}
    # Optuna 5: multivariate (None: its default), constant liar
    sampler = ot.samplers.TPESampler(seed=setting.seed, multivariate=multivariate, **startup)
    return ConcurrencyLimiter(OptunaSearch(sampler=sampler), max_concurrent=setting.workers), _scheduler(setting)


def optuna_univariate(setting: Setting) -> tuple[Searcher, TrialScheduler]:
    return optuna(setting, multivariate=False)


def bohb(setting: Setting) -> tuple[Searcher, TrialScheduler]:
    import logging

    from ray.tune.search.bohb import TuneBOHB

    logging.getLogger("hpbandster").setLevel(logging.WARNING)
    config = {} if setting.startup is None else {"min_points_in_model": max(setting.startup, 2)}
    searcher = TuneBOHB(bohb_config=config, seed=setting.seed, max_concurrent=setting.workers)
    if setting.scheduler == "fifo":
        return searcher, FIFOScheduler()
    return searcher, HyperBandForBOHB(time_attr="epoch", max_t=setting.max_t, reduction_factor=ETA)


PEERS = {
    "ours": ours,
    "ours-repeats": ours_repeats,
    "ours-before": ours_before,
    "ours-g50": ours_gamma(0.5),
    "ours-g100": ours_gamma(1.0),
    "random": random,
    "optuna": optuna,
    "optuna-uni": optuna_univariate,
    "bohb": bohb,
}
