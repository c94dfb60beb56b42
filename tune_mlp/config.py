"""The one config object of a training run: CLI -> trainable -> checkpoint config.json -> analysis."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The metric every part of the tool optimises and selects by: searcher, scheduler,
# checkpoint retention and analysis all read these two names from here.
METRIC = "val_accuracy"
MODE = "max"
MODES = ("max", "min")
# What every epoch reports, with the direction each is better in.
REPORTED_METRICS = {"val_accuracy": "max", "val_loss": "min", "train_accuracy": "max", "train_loss": "min"}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
WEIGHT_INITS = ("random", "xavier")
LOSSES = ("cross_entropy", "mse")
OPTIMIZER_NAMES = ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam")
LR_SCHEDULES = ("constant", "cosine")
DATASETS = ("fashion_mnist", "mnist")

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


def option(default: Any, help: str) -> Any:  # noqa: A002 (argparse's word)
    """A field with its one line of ``--help``: the CLI generates the flag from it."""
    return field(default=default, metadata={"help": help})


def choice(default: str | None, choices: tuple[str, ...], help: str) -> Any:  # noqa: A002
    """A field whose value is one of ``choices``: the CLI, space files and the dataclass all check it."""
    return field(default=default, metadata={"choices": choices, "help": help})


def bounded(default: Any, low: float | None = None, high: float | None = None, *, low_open: bool = False,
            help: str) -> Any:  # noqa: A002 # fmt: skip
    """A numeric field within [low, high] (``low_open``: strictly above low); ``None`` default means optional."""
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open, "help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one run; field names are the CLI flags (underscore spelling)."""

    dataset: str = choice("fashion_mnist", DATASETS, help="fashion_mnist | mnist")
    num_layers: int = bounded(3, 1, help="hidden layers")
    hidden_size: int = bounded(128, 1, help="units per hidden layer")
    activation: str = choice("relu", ACTIVATIONS, help="sigmoid | tanh | relu | identity")
    weight_init: str = choice("xavier", WEIGHT_INITS, help="random (N(0, 0.01^2)) | xavier (Glorot uniform)")
    optimizer: str = choice("adam", OPTIMIZER_NAMES, help="sgd | momentum | nag | rmsprop | adam | nadam")
    learning_rate: float = bounded(1e-3, 0.0, low_open=True, help="peak step size")
    momentum: float = bounded(0.9, 0.0, 1.0, help="momentum / nag")
    beta: float = bounded(0.9, 0.0, 1.0, help="rmsprop decay of the squared-gradient average")
    beta1: float = bounded(0.9, 0.0, 1.0, help="adam / nadam first moment decay")
    beta2: float = bounded(0.999, 0.0, 1.0, help="adam / nadam second moment decay")
    epsilon: float = bounded(1e-7, 0.0, low_open=True, help="rmsprop / adam / nadam denominator guard (Keras default)")
    batch_size: int = bounded(32, 1, help="mini-batch size")
    epochs: int = bounded(10, 1, help="passes over the training split")
    weight_decay: float = bounded(0.0, 0.0, help="L2 coefficient on kernels: loss += wd/2 * sum(W^2)")
    loss: str = choice("cross_entropy", LOSSES, help="cross_entropy | mse (on softmax probabilities)")
    dropout: float = bounded(0.0, 0.0, 0.95, help="drop rate after each hidden layer, training only")
    lr_schedule: str = choice("constant", LR_SCHEDULES, help="constant | cosine (decay to 0 over the run)")
    warmup_epochs: float = bounded(0.0, 0.0, help="linear warm-up from 0 to learning_rate")
    val_fraction: float = bounded(0.1, 0.0, 0.5, low_open=True, help="share of the training set held out, stratified")
    split_seed: int = bounded(
        0, help="which examples are held out; fixed across a search so every trial scores the same ones"
    )
    seed: int = bounded(0, help="init, shuffling and dropout")
    jit_compile: bool = option(True, "XLA-compile the whole-epoch graph (faster on CPU)")

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


# Derived once from TrainConfig's fields, for the space files and distributions that need them by name.
CHOICES: dict[str, tuple[str, ...]] = {
    f.name: f.metadata["choices"] for f in dataclasses.fields(TrainConfig) if "choices" in f.metadata
}
BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    f.name: (f.metadata["low"], f.metadata["high"], f.metadata["low_open"])
    for f in dataclasses.fields(TrainConfig)
    if "low" in f.metadata
}
INT_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.type == "int")


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


def value_errors(values: dict[str, Any], cls: type | None = None) -> list[tuple[str, str]]:
    """The errors ``values`` (over the defaults) would raise, without raising: for CLIs and space files."""
    cls = cls or TrainConfig
    candidate = object.__new__(cls)
    for name, value in {**dataclasses.asdict(cls()), **values}.items():
        object.__setattr__(candidate, name, coerce_value(name, value))
    return validation_errors(candidate)


def validation_errors(config: Any) -> list[tuple[str, str]]:
    """(field, message) for each bad value of a config dataclass, from its fields' ``choice``/``bounded`` metadata."""
    errors: list[tuple[str, str]] = []
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None and f.default is None:
            continue  # an optional field left unset
        if "choices" in meta and value not in meta["choices"]:
            errors.append((f.name, f"invalid choice {value!r} (choose from {', '.join(meta['choices'])})"))
        elif "low" in meta:
            message = _bound_error(value, meta["low"], meta["high"], meta["low_open"])
            if message:
                errors.append((f.name, message))
    return errors


def _bound_error(value: Any, low: float | None, high: float | None, low_open: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {value!r}"
    if not math.isfinite(value):
        return f"invalid value {value!r} (must be a finite number)"
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        limit = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        return f"invalid value {value!r} (must be {limit})"
    return None


def is_better(score: float, best: float | None, mode: str = MODE) -> bool:
    """Whether ``score`` beats ``best`` under ``mode`` (max or min); NaN never wins, anything beats None."""
    if score != score:
        return False
    return best is None or (score > best if mode == "max" else score < best)
