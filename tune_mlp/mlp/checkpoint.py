"""Checkpoint directories: ``config.json`` + ``weights.npz`` (+ optimizer state and progress to resume).

Everything is JSON or ``np.savez`` arrays and is loaded with ``allow_pickle=False``, so a
checkpoint from an untrusted source cannot run code and any tool can read it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp import storage
from tune_mlp.config import TrainConfig
from tune_mlp.errors import UserInputError
from tune_mlp.mlp.network import layer_sizes  # not model: no TensorFlow

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
DAMAGED_FIX = "use another checkpoint (an earlier checkpoint_* of the trial) or train again"


class CheckpointError(UserInputError, ValueError):
    """A checkpoint directory that is missing files or whose weights do not fit its config."""


@dataclass
class Checkpoint:
    config: TrainConfig
    weights: list[np.ndarray]
    epoch: int = 0  # epochs completed when it was written
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # the epoch's metrics
    path: Path | None = None


def weight_names(count: int) -> list[str]:
    return [f"{kind}{i}" for i in range(count // 2) for kind in ("W", "b")]


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint.config.save(directory / CONFIG_FILE)
    np.savez(directory / WEIGHTS_FILE, **dict(zip(weight_names(len(checkpoint.weights)), checkpoint.weights)))
    if checkpoint.optimizer_state:
        np.savez(directory / OPTIMIZER_FILE, **checkpoint.optimizer_state)
    state = {"epoch": checkpoint.epoch, "metrics": checkpoint.metrics, "history": checkpoint.history}
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    return directory


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read a checkpoint (a folder, or a URI such as ``s3://…``) and check that its weights fit its config."""
    if storage.is_uri(str(directory)):
        with storage.local_copy(str(directory)) as local:
            return _load_folder(local)  # its arrays are in memory: the download can go
    return _load_folder(Path(directory))


def _load_folder(directory: Path) -> Checkpoint:
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory} is not a tune_mlp checkpoint: {name} is missing")
    try:
        config = TrainConfig.load(directory / CONFIG_FILE)
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{directory / CONFIG_FILE} is not JSON ({error}): the checkpoint is damaged; {DAMAGED_FIX}"
        ) from None
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {error}") from None
    arrays = _read_npz(directory / WEIGHTS_FILE)
    sizes = layer_sizes(config)
    expected = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        expected[f"W{i}"] = (fan_in, fan_out)
        expected[f"b{i}"] = (fan_out,)
    if set(arrays) != set(expected):
        raise CheckpointError(
            f"{directory}: weights.npz holds {sorted(arrays)} but config.json describes "
            f"{config.num_layers} hidden layers, which need {sorted(expected)}"
        )
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise CheckpointError(
                f"{directory}: {name} has shape {arrays[name].shape} but config.json "
                f"(num_layers={config.num_layers}, hidden_size={config.hidden_size}) needs {shape}"
            )
    weights = [arrays[name] for name in weight_names(len(expected))]
    optimizer_state: dict[str, np.ndarray] = {}
    if (directory / OPTIMIZER_FILE).is_file():
        optimizer_state = _read_npz(directory / OPTIMIZER_FILE)
    state: dict[str, Any] = {}
    if (directory / STATE_FILE).is_file():
        state = json.loads((directory / STATE_FILE).read_text())
    return Checkpoint(
        config=config,
        weights=weights,
        epoch=int(state.get("epoch", 0)),
        optimizer_state=optimizer_state,
        history=list(state.get("history", [])),
        metrics=dict(state.get("metrics", {})),
        path=directory,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz``; a truncated or damaged file (a full disk, a cut copy) is a CheckpointError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return dict(npz)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as error:
        raise CheckpointError(f"{path} is truncated or damaged ({error}); {DAMAGED_FIX}") from None
