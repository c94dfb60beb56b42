"""The one config object of a training run: CLI -> trainable -> checkpoint config.json -> analysis."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The metric every part of the tool optimises and selects by: searcher, scheduler,
# checkpoint retention and analysis all read these two names from here.
METRIC = "val_accuracy"
MODE = "max"
MODES = ("max", "min")
REPORTED_METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")  # what every epoch reports

ACTIVATIONS = ("sigmoid", "tanh", "relu")
WEIGHT_INITS = ("random", "xavier")
LOSSES = ("cross_entropy", "mse")
OPTIMIZER_NAMES = ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam")
LR_SCHEDULES = ("constant", "cosine")
DATASETS = ("fashion_mnist", "mnist")


def choice(default: str, choices: tuple[str, ...]) -> Any:
    """A field whose value is one of ``choices``: the CLI, space files and the dataclass all check it."""
    return field(default=default, metadata={"choices": choices})


def bounded(default: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False) -> Any:
    """A numeric field within [low, high] (``low_open``: strictly above low); ``None`` default means optional."""
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open})


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one run; field names are the CLI flags (underscore spelling)."""

    dataset: str = choice("fashion_mnist", DATASETS)  # fashion_mnist | mnist
    num_layers: int = bounded(3, 1)  # hidden layers
    hidden_size: int = bounded(128, 1)  # units per hidden layer
    activation: str = choice("relu", ACTIVATIONS)  # sigmoid | tanh | relu
    weight_init: str = choice("xavier", WEIGHT_INITS)  # random (N(0, 0.01^2)) | xavier (Glorot uniform)
    optimizer: str = choice("adam", OPTIMIZER_NAMES)  # sgd | momentum | nag | rmsprop | adam | nadam
    learning_rate: float = bounded(1e-3, 0.0, low_open=True)  # peak step size
    momentum: float = bounded(0.9, 0.0, 1.0)  # momentum / nag
    beta: float = bounded(0.9, 0.0, 1.0)  # rmsprop decay of the squared-gradient average
    beta1: float = bounded(0.9, 0.0, 1.0)  # adam / nadam first moment decay
    beta2: float = bounded(0.999, 0.0, 1.0)  # adam / nadam second moment decay
    epsilon: float = bounded(1e-7, 0.0, low_open=True)  # rmsprop / adam / nadam denominator guard (Keras default)
    batch_size: int = bounded(32, 1)  # mini-batch size
    epochs: int = bounded(10, 1)  # passes over the training split
    weight_decay: float = bounded(0.0, 0.0)  # L2 coefficient on kernels: loss += wd/2 * sum(W^2)
    loss: str = choice("cross_entropy", LOSSES)  # cross_entropy | mse (on softmax probabilities)
    dropout: float = bounded(0.0, 0.0, 0.95)  # drop rate after each hidden layer, training only
    lr_schedule: str = choice("constant", LR_SCHEDULES)  # constant | cosine (decay to 0 over the run)
    warmup_epochs: float = bounded(0.0, 0.0)  # linear warm-up from 0 to learning_rate
    val_fraction: float = bounded(0.1, 0.0, 0.5, low_open=True)  # share of the training set held out, stratified
    split_seed: int = 0  # which examples are held out; fixed across a search so every trial scores the same ones
    seed: int = 0  # init, shuffling and dropout
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


def value_errors(values: dict[str, Any], cls: type | None = None) -> list[tuple[str, str]]:
    """The errors ``values`` (over the defaults) would raise, without raising: for CLIs and space files."""
    cls = cls or TrainConfig
    candidate = object.__new__(cls)
    for name, value in {**dataclasses.asdict(cls()), **values}.items():
        object.__setattr__(candidate, name, value)
    return validation_errors(candidate)


def validation_errors(config: Any) -> list[tuple[str, str]]:
    """(field, message) for each bad value of a config dataclass, from its fields' ``choice``/``bounded`` metadata."""
    errors: list[tuple[str, str]] = []
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if "choices" in meta and value not in meta["choices"]:
            errors.append((f.name, f"invalid choice {value!r} (choose from {', '.join(meta['choices'])})"))
        elif "low" in meta and not (value is None and f.default is None):
            message = _bound_error(value, meta["low"], meta["high"], meta["low_open"])
            if message:
                errors.append((f.name, message))
    return errors


def _bound_error(value: Any, low: float | None, high: float | None, low_open: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {value!r}"
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high) or value != value:
        limit = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        return f"invalid value {value!r} (must be {limit})"
    return None


def is_better(score: float, best: float | None, mode: str = MODE) -> bool:
    """Whether ``score`` beats ``best`` under ``mode`` (max or min); NaN never wins, anything beats None."""
    if score != score:
        return False
    return best is None or (score > best if mode == "max" else score < best)
