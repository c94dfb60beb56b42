"""Plain training runs (no Ray) shared by the study's experiments: train, score on test, keep the curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tune_mlp.config import TrainConfig
from tune_mlp.data import Splits
from tune_mlp.train import RunOptions, run_training


def train_and_score(config: TrainConfig, splits: Splits, output: Path, progress: bool = True) -> dict[str, Any]:
    """One ``tune_mlp.train`` run into ``output``; returns its metrics.json content."""
    return run_training(config, RunOptions(output=output, progress=progress), splits=splits)


def history_frame(summary: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(summary["history"])
