"""The hyperparameter columns of a trials table (``config/<name>``), shared by importance and the pictures."""

from __future__ import annotations

import pandas as pd

CONFIG_PREFIX = "config/"


def short_name(column: str) -> str:
    """``config/learning_rate`` -> ``learning_rate``; other columns unchanged."""
    return column[len(CONFIG_PREFIX) :] if column.startswith(CONFIG_PREFIX) else column


def varying_config_columns(trials: pd.DataFrame) -> list[str]:
    """`config/*` columns with more than one value (NaN counts as a value): constant ones explain nothing."""
    return [c for c in trials.columns if c.startswith(CONFIG_PREFIX) and trials[c].nunique(dropna=False) > 1]


def is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
