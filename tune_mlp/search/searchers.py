"""The searchers a search can run: ``build(name, ...)`` gives a Tune ``Searcher``, warm-started through public routes.

    hyperopt  HyperOpt's TPE (the default), random until ``startup`` trials have a score, no config twice
    optuna    Optuna's TPE (multivariate, constant liar) via Ray's OptunaSearch
    bohb      TuneBOHB (with HyperBandForBOHB instead of ASHA)
    random    Tune's random draws (None: its BasicVariantGenerator)

An extension's earlier results reach the searcher as finished trials before its first proposal.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.optuna import OptunaSearch

from tune_mlp.search.tune_space import SweepDistribution, sweep_parameters

Points = list[dict[str, Any]]


class Quantiles:
    """Mixin for a Tune searcher: each ``SweepDistribution`` of the space is searched as a uniform quantile (the
    points and earlier results it is given say a sweep parameter as its quantile: ``build`` converts them)."""

    _sweep: dict[str, SweepDistribution] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        self._sweep = sweep_parameters(config)
        space = {key: tune.uniform(0.0, 1.0) if key in self._sweep else value for key, value in config.items()}
        return super().set_search_properties(metric, mode, space, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config = {key: self._sweep[key].ppf(value) if key in self._sweep else value
                      for key, value in config.items()}  # fmt: skip
        return config


class TPE(Quantiles, HyperOptSearch):
    """Ray's HyperOptSearch over every W&B distribution, started from ``evaluated`` (config, reward) results: each is
    run as a point, then completed with its score (HyperOpt has no warm-start argument). ``tpe_after_results`` says
    how ``n_initial_points`` and ``repeats`` differ from HyperOpt's own (HyperOptSearch's public ``algo``)."""

    def __init__(self, n_initial_points: int = 20, random_state_seed: int | None = None, gamma: float = 0.25,
                 evaluated: Points | None = None, points_to_evaluate: Points | None = None,
                 repeats: bool = False) -> None:  # fmt: skip
        evaluated = evaluated or []
        self._rewards = [point["reward"] for point in evaluated]  # told once the space is known
        self._algo = dict(n_startup_jobs=n_initial_points, gamma=gamma, repeats=repeats)
        points = [*(dict(point["config"]) for point in evaluated), *(points_to_evaluate or [])]
        super().__init__(points_to_evaluate=points or None, n_initial_points=n_initial_points,
                         random_state_seed=random_state_seed, gamma=gamma)  # fmt: skip

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        self.algo = functools.partial(tpe_after_results, sweep=self._sweep, **self._algo)
        for index, reward in enumerate(self._rewards):  # the earlier results: run first, then finished
            self.suggest(f"earlier_{index}")
            self.on_trial_complete(f"earlier_{index}", {self.metric: reward})
        return True


REPEAT_TPE_TRIES, REPEAT_RANDOM_TRIES = 4, 16


def tpe_after_results(new_ids: list, domain: Any, trials: Any, seed: int, n_startup_jobs: int, gamma: float,
                      sweep: dict[str, SweepDistribution], repeats: bool = False) -> list:  # fmt: skip
    """HyperOpt's ``tpe.suggest``, random until ``n_startup_jobs`` trials have a result (HyperOpt counts running ones).
    Without ``repeats``, a config another trial has is drawn again (``REPEAT_TPE_TRIES`` times by TPE, then at random):
    every trial trains with the same seed, yet TPE on a small discrete space proposes its favourite again and again."""
    from hyperopt import STATUS_OK, rand, tpe

    scored = sum(doc["result"].get("status") == STATUS_OK for doc in trials.trials)
    tried = [_values(doc, sweep) for doc in trials.trials]
    more = np.random.default_rng(seed).integers(2**31 - 1, size=REPEAT_TPE_TRIES + REPEAT_RANDOM_TRIES - 1)
    for attempt, attempt_seed in enumerate([seed, *more]):  # the first proposal as HyperOpt's own
        if attempt >= REPEAT_TPE_TRIES or scored < n_startup_jobs:
            docs = rand.suggest(new_ids, domain, trials, int(attempt_seed))
        else:
            docs = tpe.suggest(new_ids, domain, trials, int(attempt_seed), n_startup_jobs=0, gamma=gamma)
        if repeats or _values(docs[0], sweep) not in tried:
            break  # only a space with nothing new left gets a repeat
    return docs


def _values(doc: dict[str, Any], sweep: dict[str, SweepDistribution]) -> dict[str, Any]:
    """A HyperOpt trial's config as the trial trains it (a sweep parameter's quantile through its ``ppf``)."""
    return {key: [sweep[key].ppf(v) for v in values] if key in sweep else list(values)
            for key, values in doc["misc"]["vals"].items()}  # fmt: skip


class OptunaTPE(Quantiles, OptunaSearch):
    """Ray's OptunaSearch over every W&B distribution (Optuna's own warm start: ``evaluated_rewards``)."""


def build(name: str, space: dict[str, Any], seed: int, concurrency: int, startup: int,
          evaluated: Points | None = None, points: Points | None = None) -> Searcher | None:  # fmt: skip
    """The searcher ``--searcher name`` runs over the Tune ``space`` (random: None, Tune's own draws): ``startup``
    random trials first, an extension's ``evaluated`` (trial_id, config, reward) results as finished trials, the
    sweep file's ``points`` run first as given. BOHB starts from its own defaults."""
    sweep = sweep_parameters(space)

    def quantiles(point: dict[str, Any]) -> dict[str, Any]:  # each sweep parameter as the quantile that gives it
        return {key: sweep[key].quantile(value) if key in sweep else value for key, value in point.items()}

    evaluated = [{**point, "config": quantiles(point["config"])} for point in evaluated or []]
    points = [quantiles(point) for point in points or []]
    if name == "hyperopt":
        tpe = TPE(n_initial_points=startup, random_state_seed=seed, evaluated=evaluated, points_to_evaluate=points)
        return ConcurrencyLimiter(tpe, max_concurrent=concurrency)
    if name == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
        tpe = OptunaTPE(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
                        points_to_evaluate=[p["config"] for p in evaluated] or points or None,
                        evaluated_rewards=[p["reward"] for p in evaluated] or None)  # fmt: skip
        return ConcurrencyLimiter(tpe, max_concurrent=concurrency)
    if name == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        # its own count: HyperBandForBOHB pauses trials, and a paused trial frees its slot
        return TuneBOHB(seed=seed, max_concurrent=concurrency)
    return None


class WarmASHA(ASHAScheduler):
    """ASHA on epochs that starts with an extension's earlier trials at its rungs (told through ASHA's public trial
    events), so that the new part's first trials have peers to lose to (measured: docs/benchmarks.md)."""

    def __init__(self, earlier: dict[str, dict[int, float]], **asha: Any) -> None:
        self._earlier = earlier  # trial_id: {epoch: score}
        super().__init__(time_attr="epoch", **asha)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if not super().set_search_properties(metric, mode, **spec):
            return False
        for trial_id, scores in self._earlier.items():
            trial = Trial("earlier", trial_id=f"earlier_{trial_id}", stub=True)  # never a new trial's id
            self.on_trial_add(None, trial)
            for epoch, score in sorted(scores.items()):
                self.on_trial_result(None, trial, {"epoch": epoch, self.metric: score})
            self.on_trial_remove(None, trial)  # it ran before: its scores stay at the rungs
        return True
