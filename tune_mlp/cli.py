"""Argument parsing shared by every entry point: flags generated from config dataclasses, values checked early.

The original study spells flags with underscores (``--num_layers``), Ray users with hyphens
(``--num-layers``); every CLI of this package accepts both. A dataclass field's type, default,
``choice``/``bounded``/``option`` metadata (with its ``help``) become its flag's type, default, check and help.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tune_mlp.config import TrainConfig, normalize_choice, value_errors
from tune_mlp.errors import UserInputError

T = TypeVar("T")
_TYPES = {"int": int, "float": float, "str": str}

# The course assignment's short flags (``python train.py -nhl 3 -sz 128 -a ReLU ...``), so its users' commands
# run as typed. Each is an exact alias of the long flag; argparse matches a whole option before any prefix,
# so ``-e``/``-eps`` and ``-b``/``-beta``/``-beta1`` never shadow each other (tests/test_cli.py checks).
SHORT_FLAGS = {
    "num_layers": "-nhl",
    "hidden_size": "-sz",
    "learning_rate": "-lr",
    "weight_init": "-w_i",
    "weight_decay": "-w_d",
    "optimizer": "-o",
    "activation": "-a",
    "loss": "-l",
    "batch_size": "-b",
    "epochs": "-e",
    "dataset": "-d",
    "momentum": "-m",
    "beta": "-beta",
    "beta1": "-beta1",
    "beta2": "-beta2",
    "epsilon": "-eps",
    "wandb_project": "-wp",
    "wandb_entity": "-we",
}


def add_flag(parser: Any, name: str, **kwargs: Any) -> None:
    """On a parser or an argument group: ``--a_b`` and ``--a-b`` for one option (one spelling when the name has
    no separator), and the assignment's short flag where it has one."""
    under, hyphen = "--" + name.replace("-", "_"), "--" + name.replace("_", "-")
    flags = [under] if under == hyphen else [under, hyphen]
    if kwargs.get("action") is argparse.BooleanOptionalAction:
        flags = [hyphen] if under == hyphen else [hyphen, under]
    dest = name.replace("-", "_")
    short = [SHORT_FLAGS[dest]] if dest in SHORT_FLAGS else []
    parser.add_argument(*short, *flags, dest=dest, **kwargs)


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, title: str, skip: Sequence[str] = (), description: str | None = None
) -> Any:
    """One flag per field (in a new argument group, returned) of ``cls``, typed and defaulted from the dataclass."""
    group = parser.add_argument_group(title, description)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        text = f.metadata["help"]  # every field says what it is (config.option / choice / bounded)
        shown = "" if f.default is None or "(default:" in text else " (default: %(default)s)"
        kwargs: dict[str, Any] = {"default": f.default, "help": text + shown}
        kind = str(f.type).replace(" | None", "")
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        else:
            kwargs["type"] = _TYPES[kind]
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
                kwargs["type"] = _choice_type(f.name)
            else:
                kwargs["metavar"] = f.name.upper()
        add_flag(group, f.name, **kwargs)
    return group


def _choice_type(name: str) -> Callable[[str], str]:
    """argparse checks ``choices`` after ``type``: normalising here lets ``--activation ReLU`` through."""

    def convert(value: str) -> str:
        return normalize_choice(name, value)

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def add_train_arguments(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    add_dataclass_arguments(
        parser, TrainConfig, "training run (TrainConfig)", skip,
        "choices are case-insensitive and take common spellings (ReLU, Xavier, mean_squared_error = mse); "
        "see docs/sweeps.md",
    )  # fmt: skip


def dataclass_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, cls: type[T]) -> T:
    """Build ``cls`` from parsed flags, turning a bad value into an argparse error (exit 2) that names it."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    errors = value_errors(values, cls)
    if errors:
        name, message = errors[0]
        parser.error(f"argument --{name}: {message}")
    return cls(**values)


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    return dataclass_from_args(parser, args, TrainConfig)


def report_user_errors(run: Callable[[], int]) -> int:
    """Run a CLI's work; bad input (a path, a file, a value) becomes one ``error:`` line and exit code 2."""
    try:
        return run()
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
