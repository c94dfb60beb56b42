"""The one config object of a training run: CLI -> trainable -> checkpoint config.json -> analysis."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The metric every part of the tool optimises and selects by: searcher, scheduler,
# checkpoint retention and analysis all read these two names from here.
METRIC = "val_accuracy"
MODE = "max"

ACTIVATIONS = ("sigmoid", "tanh", "relu")
WEIGHT_INITS = ("random", "xavier")
LOSSES = ("cross_entropy", "mse")
OPTIMIZER_NAMES = ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam")
LR_SCHEDULES = ("constant", "cosine")
DATASETS = ("fashion_mnist", "mnist")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one run; field names are the CLI flags (underscore spelling)."""

    dataset: str = "fashion_mnist"  # fashion_mnist | mnist
    num_layers: int = 3  # hidden layers
    hidden_size: int = 128  # units per hidden layer
    activation: str = "relu"  # sigmoid | tanh | relu
    weight_init: str = "xavier"  # random (N(0, 0.01^2)) | xavier (Glorot uniform)
    optimizer: str = "adam"  # sgd | momentum | nag | rmsprop | adam | nadam
    learning_rate: float = 1e-3  # peak step size
    momentum: float = 0.9  # momentum / nag
    beta: float = 0.9  # rmsprop decay of the squared-gradient average
    beta1: float = 0.9  # adam / nadam first moment decay
    beta2: float = 0.999  # adam / nadam second moment decay
    epsilon: float = 1e-7  # rmsprop / adam / nadam denominator guard (Keras default)
    batch_size: int = 32  # mini-batch size
    epochs: int = 10  # passes over the training split
    weight_decay: float = 0.0  # L2 coefficient on kernels: loss += wd/2 * sum(W^2)
    loss: str = "cross_entropy"  # cross_entropy | mse (on softmax probabilities)
    dropout: float = 0.0  # drop rate after each hidden layer, training only
    lr_schedule: str = "constant"  # constant | cosine (decay to 0 over the run)
    warmup_epochs: float = 0.0  # linear warm-up from 0 to learning_rate
    val_fraction: float = 0.1  # share of the training set held out, stratified
    seed: int = 0  # init, split, shuffling and dropout
    jit_compile: bool = True  # XLA-compile the whole-epoch graph (faster on CPU)

    def __post_init__(self) -> None:
        for name, error in validation_errors(self):
            raise ValueError(f"{name}: {error}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict that may hold extra keys (Tune configs, W&B metadata): they are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def value_errors(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The errors ``values`` (over the defaults) would raise, without raising: for CLIs and space files."""
    candidate = object.__new__(TrainConfig)
    for name, value in {**TrainConfig().to_dict(), **values}.items():
        object.__setattr__(candidate, name, value)
    return validation_errors(candidate)


def validation_errors(config: TrainConfig) -> list[tuple[str, str]]:
    """(field, message) for each bad value; shared by the CLI, search spaces and the dataclass."""
    errors: list[tuple[str, str]] = []

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(config, name)
        if value not in allowed:
            errors.append((name, f"invalid choice {value!r} (choose from {', '.join(allowed)})"))

    def bounded(name: str, low: float, high: float | None = None, *, low_open: bool = False) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append((name, f"expected a number, got {value!r}"))
            return
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high) or value != value:
            side = ">" if low_open else ">="
            limit = f"{side} {low}" + (f" and <= {high}" if high is not None else "")
            errors.append((name, f"invalid value {value!r} (must be {limit})"))

    choice("dataset", DATASETS)
    choice("activation", ACTIVATIONS)
    choice("weight_init", WEIGHT_INITS)
    choice("optimizer", OPTIMIZER_NAMES)
    choice("loss", LOSSES)
    choice("lr_schedule", LR_SCHEDULES)
    bounded("num_layers", 1)
    bounded("hidden_size", 1)
    bounded("learning_rate", 0.0, low_open=True)
    bounded("momentum", 0.0, 1.0)
    bounded("beta", 0.0, 1.0)
    bounded("beta1", 0.0, 1.0)
    bounded("beta2", 0.0, 1.0)
    bounded("epsilon", 0.0, low_open=True)
    bounded("batch_size", 1)
    bounded("epochs", 1)
    bounded("weight_decay", 0.0)
    bounded("dropout", 0.0, 0.95)
    bounded("warmup_epochs", 0.0)
    bounded("val_fraction", 0.0, 0.5, low_open=True)
    return errors
