"""Learning-curve tables: one row per epoch of one (config, training seed), written by
``scripts/make_curve_table.py`` and read here."""

from __future__ import annotations

import csv
import gzip
import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The recorded columns after a table's config keys, in file order.
CURVE_COLUMNS = (
    "config_id", "seed", "epoch",
    "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy",
    "epoch_seconds", "eval_seconds",
)  # fmt: skip
TABLES_DIR = Path(str(importlib.resources.files("tune_mlp.replay"))) / "tables"


def run_key(row: dict[str, Any]) -> tuple[int, int]:
    """(config_id, seed): one training run of the table."""
    return int(row["config_id"]), int(row["seed"])


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """The table's rows as strings (gzip members appended by a resumed run read as one file)."""
    with gzip.open(path, "rt", newline="") as handle:
        yield from csv.DictReader(handle)
