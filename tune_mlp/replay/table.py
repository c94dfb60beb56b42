"""Learning-curve tables: one row per epoch of one (config, training seed), written by
``scripts/make_curve_table.py`` and read here."""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp.errors import UserInputError

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


METRICS = ("val_accuracy", "test_accuracy", "val_loss", "test_loss")
REMAKE = "make it again with `python scripts/make_curve_table.py` (resumable) or restore it with `git checkout`"


class TableError(UserInputError, ValueError):
    """A learning-curve table that cannot be read as one: the message names the file and the fix."""


@dataclass(frozen=True)
class Table:
    """A space's recorded learning curves: arrays indexed [config, seed, epoch - 1].

    A run that diverged stops early, as the trial did: its later epochs are NaN and ``lengths`` says
    how many it has. ``seconds`` is what one epoch of that run cost a trial (training + evaluation).
    """

    name: str
    keys: tuple[str, ...]  # the sampled config keys, in file order
    configs: list[dict[str, Any]]  # one per config index
    seeds: tuple[int, ...]
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    seconds: np.ndarray
    lengths: np.ndarray  # [config, seed]: epochs recorded

    @property
    def epochs(self) -> int:
        return int(self.val_accuracy.shape[2])

    def index(self) -> dict[tuple[Any, ...], int]:
        """Config values (normalised by ``config_key``) -> config index."""
        return {config_key(c, self.keys): i for i, c in enumerate(self.configs)}


def config_key(config: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    """A config's values as a hashable key: numbers compared as floats (0 == 0.0), the rest as text."""
    return tuple(_number(config[k]) if _number(config[k]) is not None else str(config[k]) for k in keys)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _value(text: str) -> Any:
    """A config cell as YAML would have given it: int, float, or text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_table(path: str | Path, partial: bool = False) -> Table:
    """Read a table written by ``scripts/make_curve_table.py``; refuse a damaged one with a ``TableError``.

    ``partial``: a table still being made. Keep the seeds every config that has any run has finished,
    and the configs that have them (otherwise every (config, seed) of the file must have all its epochs).
    """
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: no such table; {REMAKE}")
    try:
        rows = list(read_rows(path))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise TableError(f"{path}: truncated or damaged ({type(exc).__name__}: {exc}); {REMAKE}") from None
    if not rows:
        raise TableError(f"{path}: no rows; {REMAKE}")
    columns = list(rows[0])
    missing = [c for c in CURVE_COLUMNS if c not in columns]
    if missing:
        raise TableError(f"{path}: missing column {', '.join(missing)}; {REMAKE}")
    keys = tuple(columns[: columns.index("config_id")])
    runs: dict[tuple[int, int], dict[int, dict[str, float]]] = {}
    configs: dict[int, dict[str, Any]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            values = {c: float(row[c]) for c in CURVE_COLUMNS}
        except (TypeError, ValueError):
            bad = next(c for c in CURVE_COLUMNS if _number(row.get(c)) is None)
            raise TableError(f"{path}: line {line}: {bad} is {row.get(bad)!r}, not a number; {REMAKE}") from None
        config_id, seed, epoch = int(values["config_id"]), int(values["seed"]), int(values["epoch"])
        runs.setdefault((config_id, seed), {})[epoch] = values
        configs.setdefault(config_id, {k: _value(row[k]) for k in keys})
    for (config_id, seed), curve in runs.items():
        length = max(curve)
        diverged = not math.isfinite(curve[length]["train_loss"]) or not math.isfinite(curve[length]["val_loss"])
        if sorted(curve) != list(range(1, length + 1)) or (length < _longest(runs) and not diverged):
            raise TableError(
                f"{path}: config {config_id} seed {seed} has epochs {sorted(curve)}, not 1..{_longest(runs)}; {REMAKE}"
            )
    seeds_of: dict[int, set[int]] = {}
    for config_id, seed in runs:
        seeds_of.setdefault(config_id, set()).add(seed)
    seeds = sorted(set.intersection(*seeds_of.values()))
    if not partial:
        every = sorted(set.union(*seeds_of.values()))
        lacking = [c for c, s in sorted(seeds_of.items()) if sorted(s) != every]
        if lacking:
            raise TableError(
                f"{path}: config {lacking[0]} lacks seeds {sorted(set(every) - seeds_of[lacking[0]])} "
                f"({len(lacking)} configs incomplete); finish it with `python scripts/make_curve_table.py`"
            )
        seeds = every
    ids = sorted(configs)
    epochs = _longest(runs)
    shape = (len(ids), len(seeds), epochs)
    arrays = {name: np.full(shape, np.nan) for name in (*METRICS, "seconds")}
    lengths = np.zeros(shape[:2], dtype=int)
    for i, config_id in enumerate(ids):
        for j, seed in enumerate(seeds):
            for epoch, values in runs[(config_id, seed)].items():
                for name in METRICS:
                    arrays[name][i, j, epoch - 1] = values[name]
                arrays["seconds"][i, j, epoch - 1] = values["epoch_seconds"] + values["eval_seconds"]
            lengths[i, j] = len(runs[(config_id, seed)])
    name = path.name.split(".")[0]
    return Table(name, keys, [configs[i] for i in ids], tuple(seeds), lengths=lengths, **arrays)


def _longest(runs: dict[tuple[int, int], dict[int, Any]]) -> int:
    return max(max(curve) for curve in runs.values())
