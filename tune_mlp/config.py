"""The one config object of a training run: CLI -> trainable -> checkpoint config.json -> analysis."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The metric every part of the tool optimises and selects by: searcher, scheduler,
# checkpoint retention and analysis all read these two names from here.
METRIC = "val_accuracy"
MODE = "max"

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
WEIGHT_INITS = ("random", "xavier")
LOSSES = ("cross_entropy", "mse")
OPTIMIZER_NAMES = ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam")
LR_SCHEDULES = ("constant", "cosine")
DATASETS = ("fashion_mnist", "mnist")
CHOICES = {
    "dataset": DATASETS,
    "activation": ACTIVATIONS,
    "weight_init": WEIGHT_INITS,
    "optimizer": OPTIMIZER_NAMES,
    "loss": LOSSES,
    "lr_schedule": LR_SCHEDULES,
}

# Spellings of choice values that users bring (the course assignment, Keras, W&B sweep files) -> ours.
# normalize_choice lower-cases and turns '-' and ' ' into '_' first, so 'ReLU', 'Xavier', 'Fashion-MNIST'
# and 'NAG' need no entry here; only genuinely different words do.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "activation": {"linear": "identity", "none": "identity", "logistic": "sigmoid"},
    "weight_init": {"glorot": "xavier", "glorot_uniform": "xavier", "normal": "random", "gaussian": "random"},
    "loss": {
        "mean_squared_error": "mse",
        "squared_error": "mse",
        "crossentropy": "cross_entropy",
        "categorical_crossentropy": "cross_entropy",
        "sparse_categorical_crossentropy": "cross_entropy",
        "ce": "cross_entropy",
    },
    "optimizer": {"nesterov": "nag", "nesterov_momentum": "nag", "sgd_momentum": "momentum", "sgdm": "momentum"},
    "dataset": {"fashionmnist": "fashion_mnist", "fmnist": "fashion_mnist"},
    "lr_schedule": {"cosine_decay": "cosine", "cosine_annealing": "cosine", "none": "constant", "fixed": "constant"},
}

# Hyperparameter names seen in sweep files and assignment CLIs -> our field. Names are lower-cased and '-'
# becomes '_' first (``learning-rate`` needs no entry). ``max_epochs`` as a *parameter* can only mean how long
# a run trains, so it is ``epochs`` (still capped by the search's --max-epochs budget). Anything else that
# is not a field stays an error naming the nearest fields.
HYPERPARAMETER_ALIASES: dict[str, str] = {
    **dict.fromkeys(("lr", "eta", "learningrate", "step_size"), "learning_rate"),
    **dict.fromkeys(
        ("nhl", "n_layers", "layers", "hidden_layers", "num_hidden_layers", "hidden_layer", "n_hidden_layers", "depth"),
        "num_layers",
    ),
    **dict.fromkeys(
        ("sz", "size", "hidden_layer_size", "layer_size", "hidden_units", "units", "hidden_dim", "width", "neurons"),
        "hidden_size",
    ),
    **dict.fromkeys(("w_d", "wd", "alpha", "l2", "l2_reg", "l2_lambda", "weight_decay_rate"), "weight_decay"),
    **dict.fromkeys(("w_i", "init", "initializer", "weight_initializer", "initialization", "winit"), "weight_init"),
    **dict.fromkeys(("a", "act", "activation_function", "activation_fn", "activations"), "activation"),
    **dict.fromkeys(("o", "opt", "optimiser", "optim", "optimizer_name"), "optimizer"),
    **dict.fromkeys(("b", "batch", "bs", "batchsize", "mini_batch_size"), "batch_size"),
    **dict.fromkeys(("e", "epoch", "n_epochs", "num_epochs", "max_epochs"), "epochs"),
    **dict.fromkeys(("eps",), "epsilon"),
    **dict.fromkeys(("m", "mom"), "momentum"),
    **dict.fromkeys(("rho",), "beta"),
    **dict.fromkeys(("b1", "beta_1"), "beta1"),
    **dict.fromkeys(("b2", "beta_2"), "beta2"),
    **dict.fromkeys(("d", "data", "data_set"), "dataset"),
    **dict.fromkeys(("l", "loss_function", "loss_fn", "criterion"), "loss"),
    **dict.fromkeys(("drop", "dropout_rate", "p_dropout"), "dropout"),
    **dict.fromkeys(("schedule", "lr_scheduler", "lr_decay"), "lr_schedule"),
    **dict.fromkeys(("warmup", "warm_up_epochs"), "warmup_epochs"),
    **dict.fromkeys(("val_split", "validation_split", "validation_fraction"), "val_fraction"),
    **dict.fromkeys(("random_seed",), "seed"),
}

# (low, high, low_open) of each numeric field: the CLI, space files and sampled values all read it here.
BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    "num_layers": (1, None, False),
    "hidden_size": (1, None, False),
    "learning_rate": (0.0, None, True),
    "momentum": (0.0, 1.0, False),
    "beta": (0.0, 1.0, False),
    "beta1": (0.0, 1.0, False),
    "beta2": (0.0, 1.0, False),
    "epsilon": (0.0, None, True),
    "batch_size": (1, None, False),
    "epochs": (1, None, False),
    "weight_decay": (0.0, None, False),
    "dropout": (0.0, 0.95, False),
    "warmup_epochs": (0.0, None, False),
    "val_fraction": (0.0, 0.5, True),
    "seed": (None, None, False),
}
INT_FIELDS = ("num_layers", "hidden_size", "batch_size", "epochs", "seed")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one run; field names are the CLI flags (underscore spelling)."""

    dataset: str = "fashion_mnist"  # fashion_mnist | mnist
    num_layers: int = 3  # hidden layers
    hidden_size: int = 128  # units per hidden layer
    activation: str = "relu"  # sigmoid | tanh | relu | identity
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
        """Build from a dict that may hold extra keys (Tune configs, W&B metadata): they are ignored.

        Choice values are normalised (``ReLU`` -> ``relu``) and integral floats for integer fields
        (a q_uniform's ``128.0``) become ints.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: coerce_value(k, v) for k, v in values.items() if k in known})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def canonical_name(name: str) -> str | None:
    """Our field for a hyperparameter name as users write it (``lr``, ``Learning-Rate``); None if none fits."""
    key = str(name).strip().lower().replace("-", "_")
    if key in field_names():
        return key
    return HYPERPARAMETER_ALIASES.get(key)


def normalize_choice(field: str, value: Any) -> Any:
    """``ReLU`` -> ``relu``, ``mean_squared_error`` -> ``mse``; other values (and other fields) pass unchanged."""
    if field not in CHOICES or not isinstance(value, str):
        return value
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    key = VALUE_ALIASES.get(field, {}).get(key, key)
    return key if key in CHOICES[field] else value


def coerce_value(field: str, value: Any) -> Any:
    """A value as TrainConfig stores it: choices normalised, integral floats of integer fields as ints."""
    if field in INT_FIELDS and isinstance(value, float) and value.is_integer():
        return int(value)
    return normalize_choice(field, value)


def value_errors(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The errors ``values`` (over the defaults) would raise, without raising: for CLIs and space files."""
    candidate = object.__new__(TrainConfig)
    for name, value in {**TrainConfig().to_dict(), **values}.items():
        object.__setattr__(candidate, name, coerce_value(name, value))
    return validation_errors(candidate)


def validation_errors(config: TrainConfig) -> list[tuple[str, str]]:
    """(field, message) for each bad value; shared by the CLI, search spaces and the dataclass."""
    errors: list[tuple[str, str]] = []

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(config, name)
        if value not in allowed:
            errors.append((name, f"invalid choice {value!r} (choose from {', '.join(allowed)})"))

    def bounded(name: str, low: float | None, high: float | None = None, *, low_open: bool = False) -> None:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append((name, f"expected a number, got {value!r}"))
            return
        if not math.isfinite(value):
            errors.append((name, f"invalid value {value!r} (must be a finite number)"))
            return
        if low is None:
            return
        too_low = value <= low if low_open else value < low
        if too_low or (high is not None and value > high):
            side = ">" if low_open else ">="
            limit = f"{side} {low}" + (f" and <= {high}" if high is not None else "")
            errors.append((name, f"invalid value {value!r} (must be {limit})"))

    for name, allowed in CHOICES.items():
        choice(name, allowed)
    for name, (low, high, low_open) in BOUNDS.items():
        bounded(name, low, high, low_open=low_open)
    return errors
