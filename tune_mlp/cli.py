"""Argument parsing shared by every entry point: flags generated from config dataclasses, values checked early.

The original study spells flags with underscores (``--num_layers``), Ray users with hyphens
(``--num-layers``); every CLI of this package accepts both. A dataclass field's type, default,
``choice``/``bounded`` metadata and one-line comment become its flag's type, default, check and help.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tune_mlp.config import TrainConfig, value_errors
from tune_mlp.errors import UserInputError

T = TypeVar("T")
_TYPES = {"int": int, "float": float, "str": str}


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, **kwargs: Any) -> None:
    """Register ``--a_b`` and ``--a-b`` for one option (one spelling when the name has no separator)."""
    under, hyphen = "--" + name.replace("-", "_"), "--" + name.replace("_", "-")
    flags = [under] if under == hyphen else [under, hyphen]
    if kwargs.get("action") is argparse.BooleanOptionalAction:
        flags = [hyphen] if under == hyphen else [hyphen, under]
    parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


def field_help(cls: type) -> dict[str, str]:
    """The one-line comments in a dataclass's source become the flags' help: written once."""
    source = inspect.getsource(cls)
    return dict(re.findall(r"^\s+(\w+): [^#\n]+#\s*(.+)$", source, flags=re.MULTILINE))


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, title: str, skip: Sequence[str] = ()
) -> argparse._ArgumentGroup:
    """One flag per field of ``cls``, typed and defaulted from the dataclass."""
    group = parser.add_argument_group(title)
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kwargs: dict[str, Any] = {"default": f.default, "help": f"{helps.get(f.name, '')} (default: %(default)s)"}
        kind = str(f.type).replace(" | None", "")
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction if f.default else "store_true"
        else:
            kwargs["type"] = _TYPES[kind]
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
            else:
                kwargs["metavar"] = f.name.upper()
        add_flag(group, f.name, **kwargs)
    return group


def add_train_arguments(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    add_dataclass_arguments(parser, TrainConfig, "training run (TrainConfig)", skip)


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
