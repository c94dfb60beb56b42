"""Which hyperparameters mattered: permutation importance of a random forest fitted from configs to the metric.

Computation only (a pandas Series); ``analysis.plots_search.importance_chart`` draws it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from analysis.columns import is_categorical, short_name, varying_config_columns
from tune_mlp.config import METRIC

MIN_TRIALS_FOR_IMPORTANCE = 4


def scored_trials(trials: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """The trials with a finite score: the only ones a regression can learn from."""
    return trials.dropna(subset=[metric]) if metric in trials else trials.iloc[0:0]


def importance_problem(trials: pd.DataFrame, metric: str = METRIC) -> str | None:
    """Why the trials cannot support an importance estimate, or None when they can."""
    usable = len(scored_trials(trials, metric))
    if usable < MIN_TRIALS_FOR_IMPORTANCE:
        return f"not enough trials with a result ({usable}, need at least {MIN_TRIALS_FOR_IMPORTANCE})"
    if not varying_config_columns(trials):
        return "no hyperparameter varies across the trials"
    return None


def hyperparameter_importance(trials: pd.DataFrame, metric: str = METRIC) -> pd.Series:
    """Importances indexed by hyperparameter name (no ``config/`` prefix), sorted descending, clipped at 0 and
    normalised to sum to 1; empty when ``importance_problem`` has a reason.

    The direction of the metric does not matter: the forest regresses the score, and permuting a column that
    drives it hurts the fit either way.
    """
    if importance_problem(trials, metric):
        return pd.Series(dtype=float, name="importance")
    data = scored_trials(trials, metric)
    columns = varying_config_columns(trials)
    features = data[columns].copy()
    categorical = [c for c in columns if is_categorical(features[c])]
    numeric = [c for c in columns if c not in categorical]
    for c in categorical:
        features[c] = features[c].astype(str)  # NaN -> "nan", bools -> "True"/"False": one category each
    encoder = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric),
        ]
    )
    model = Pipeline([("encode", encoder), ("forest", RandomForestRegressor(n_estimators=300, random_state=0))])
    target = data[metric].to_numpy(dtype=float)
    model.fit(features, target)
    # Permuting the raw columns scores each hyperparameter as a whole, however many one-hot columns it became.
    result = permutation_importance(model, features, target, n_repeats=10, random_state=0)
    raw = pd.Series(np.clip(result.importances_mean, 0, None), index=[short_name(c) for c in columns])
    return (raw / raw.sum() if raw.sum() > 0 else raw).sort_values(ascending=False).rename("importance")
