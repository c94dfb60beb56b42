"""``--searcher optuna``: Optuna's TPE over every W&B distribution, warm-started in an extension.

Ray's ``OptunaSearch`` (Optuna 5's ``TPESampler``: multivariate, constant liar) with what our HyperOpt
searcher has too:
- every distribution of the W&B sweep spec: a ``SweepDistribution`` (normal, beta, weighted values, ...)
  is searched as its quantile ``u`` in (0, 1) and handed to the trial as ``ppf(u)``, as
  ``SweepHyperOptSearch`` does for HyperOpt;
- an extension's earlier results, through Ray's own warm start (``points_to_evaluate`` with
  ``evaluated_rewards``: each becomes a finished Optuna trial before the first suggestion);
- ``--initial-points``' random start-up trials (``n_startup_trials``; the warm-start trials count).
The time budget's cut-off and the worker generations wrap it as they wrap any Tune searcher
(``tune_mlp.search.budget_tune``, ``tune_mlp.search.actors``). Only this module imports Optuna.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch

from tune_mlp.search.distributions import SweepDistribution, sweep_parameters


class SweepOptunaSearch(OptunaSearch):
    """OptunaSearch that also searches ``SweepDistribution`` parameters and starts from ``evaluated`` results."""

    def __init__(self, seed: int, startup: int, evaluated: list[dict[str, Any]] | None = None,
                 points: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
        evaluated = evaluated or []
        self._sweep: dict[str, SweepDistribution] = {}
        super().__init__(
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
            # copies: set_search_properties turns a sweep parameter's value into its quantile in place
            points_to_evaluate=[dict(p["config"]) for p in evaluated] or [dict(p) for p in points or []] or None,
            evaluated_rewards=[p["reward"] for p in evaluated] or None,
        )

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if self._space:
            return False
        self._sweep = sweep_parameters(config)
        for point in self._points_to_evaluate:  # the searcher sees a sweep parameter as its quantile
            for key, domain in self._sweep.items():
                if key in point:
                    point[key] = domain.quantile(point[key])
        return super().set_search_properties(metric, mode, config, **spec)

    @staticmethod
    def convert_search_space(spec: dict) -> dict[str, Any]:
        import optuna

        ours = sweep_parameters(spec)
        rest = {key: value for key, value in spec.items() if key not in ours}
        space = OptunaSearch.convert_search_space(rest)
        space.update({key: optuna.distributions.FloatDistribution(0.0, 1.0) for key in ours})
        return space

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config = super().suggest(trial_id)
        if isinstance(config, dict):
            config = {key: self._sweep[key].ppf(value) if key in self._sweep else value
                      for key, value in config.items()}  # fmt: skip
        return config
