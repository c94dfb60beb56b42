"""Argument parsing shared by every entry point: each flag in both spellings, values checked early.

The original study spells flags with underscores (``--num_layers``), Ray users with hyphens
(``--num-layers``); every CLI of this package accepts both.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tune_mlp import config as config_module
from tune_mlp.config import TrainConfig, value_errors

_CHOICES = {
    "dataset": config_module.DATASETS,
    "activation": config_module.ACTIVATIONS,
    "weight_init": config_module.WEIGHT_INITS,
    "optimizer": config_module.OPTIMIZER_NAMES,
    "loss": config_module.LOSSES,
    "lr_schedule": config_module.LR_SCHEDULES,
}


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
    """Register ``--a_b`` and ``--a-b`` for one option (one spelling when the name has no separator)."""
    under, hyphen = "--" + name.replace("-", "_"), "--" + name.replace("_", "-")
    flags = [under] if under == hyphen else [under, hyphen]
    if kwargs.get("action") is argparse.BooleanOptionalAction:
        flags = [hyphen] if under == hyphen else [hyphen, under]
    parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


def _field_help() -> dict[str, str]:
    """The one-line comments in TrainConfig's source become the flags' help: written once."""
    source = inspect.getsource(TrainConfig)
    return dict(re.findall(r"^\s+(\w+): [^#\n]+#\s*(.+)$", source, flags=re.MULTILINE))


def add_train_arguments(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per TrainConfig field, typed and defaulted from the dataclass."""
    group = parser.add_argument_group("training run (TrainConfig)")
    helps = _field_help()
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        kwargs: dict[str, Any] = {"default": f.default, "help": f"{helps.get(f.name, '')} (default: %(default)s)"}
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}[str(f.type)]
            kwargs["metavar"] = f.name.upper()
            if f.name in _CHOICES:
                kwargs["choices"] = _CHOICES[f.name]
                kwargs.pop("metavar")
        add_flag(group, f.name, **kwargs)


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    """Build the run's config, turning a bad value into an argparse error that names it."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    errors = value_errors(values)
    if errors:
        name, message = errors[0]
        parser.error(f"argument --{name}: {message}")
    return TrainConfig(**values)


def report_user_errors(run: Callable[[], int]) -> int:
    """Run a CLI's work; bad input (a path, a file, a value) becomes one ``error:`` line and exit code 2."""
    from tune_mlp.errors import UserInputError

    try:
        return run()
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
