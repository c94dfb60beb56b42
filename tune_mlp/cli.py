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

from tune_mlp.config import CHOICES, TrainConfig, normalize_choice, value_errors

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


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
    """Register ``--a_b`` and ``--a-b`` for one option (one spelling when the name has no separator),
    and the assignment's short flag where it has one."""
    under, hyphen = "--" + name.replace("-", "_"), "--" + name.replace("_", "-")
    flags = [under] if under == hyphen else [under, hyphen]
    if kwargs.get("action") is argparse.BooleanOptionalAction:
        flags = [hyphen] if under == hyphen else [hyphen, under]
    dest = name.replace("-", "_")
    short = [SHORT_FLAGS[dest]] if dest in SHORT_FLAGS else []
    parser.add_argument(*short, *flags, dest=dest, **kwargs)


class CompactHelpFormatter(argparse.HelpFormatter):
    """``-nhl, --num_layers, --num-layers N`` instead of repeating the metavar after every spelling."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
        return f"{', '.join(action.option_strings)} {metavar}"


def _field_help() -> dict[str, str]:
    """The one-line comments in TrainConfig's source become the flags' help: written once."""
    source = inspect.getsource(TrainConfig)
    return dict(re.findall(r"^\s+(\w+): [^#\n]+#\s*(.+)$", source, flags=re.MULTILINE))


def add_train_arguments(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    """One flag per TrainConfig field, typed and defaulted from the dataclass."""
    group = parser.add_argument_group(
        "training run (TrainConfig)",
        "choices are case-insensitive and take common spellings (ReLU, Xavier, mean_squared_error = mse); "
        "see docs/sweeps.md",
    )
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
            if f.name in CHOICES:
                kwargs["choices"] = CHOICES[f.name]
                kwargs["type"] = _choice_type(f.name)
                kwargs.pop("metavar")
        add_flag(group, f.name, **kwargs)


def _choice_type(name: str) -> Callable[[str], str]:
    """argparse checks ``choices`` after ``type``: normalising here lets ``--activation ReLU`` through."""

    def convert(value: str) -> str:
        return normalize_choice(name, value)

    convert.__name__ = name  # argparse names the type in its messages
    return convert


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
