"""The train CLI takes the assignment's short flags and spellings, without argparse prefix clashes."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tune_mlp.cli import config_from_args
from tune_mlp.train import build_parser

REPO = Path(__file__).resolve().parent.parent


def test_short_flags_and_spellings_make_the_same_config_as_long_flags() -> None:
    parser = build_parser()
    short = "-nhl 2 -sz 64 -a ReLU -w_i Xavier -o NAG -lr 0.01 -m 0.8 -beta 0.7 -beta1 0.85 -beta2 0.95 -eps 1e-8"
    short += " -b 16 -e 4 -w_d 0.001 -l mean_squared_error -d Fashion-MNIST -wp proj -we team"
    long = "--num_layers 2 --hidden-size 64 --activation relu --weight_init xavier --optimizer nag"
    long += " --learning_rate 0.01 --momentum 0.8 --beta 0.7 --beta1 0.85 --beta2 0.95 --epsilon 1e-8 --batch_size 16"
    long += (
        " --epochs 4 --weight_decay 0.001 --loss mse --dataset fashion_mnist --wandb_project proj --wandb_entity team"
    )
    a, b = parser.parse_args(short.split()), parser.parse_args(long.split())
    assert vars(a) == vars(b)
    config = config_from_args(parser, a)
    assert (config.epochs, config.epsilon, config.batch_size, config.beta, config.beta1) == (4, 1e-8, 16, 0.7, 0.85)
    assert (config.activation, config.loss, config.optimizer, a.wandb_entity) == ("relu", "mse", "nag", "team")


def test_flags_that_share_a_prefix_stay_apart() -> None:
    parser = build_parser()
    args = parser.parse_args(["-e", "3", "-eps", "0.5", "-b", "8", "-beta", "0.6", "-beta1", "0.1"])
    assert (args.epochs, args.epsilon, args.batch_size, args.beta, args.beta1, args.beta2) == (
        3,
        0.5,
        8,
        0.6,
        0.1,
        0.999,
    )


def test_unknown_spelling_is_an_argparse_error_listing_the_choices() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tune_mlp.train", "-a", "gelu", "--no_wandb"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "argument -a/--activation: invalid choice: 'gelu'" in out.stderr
    assert "identity" in out.stderr and "Traceback" not in out.stderr


# Every command a user runs, by the module whose build_parser makes its flags.
CLI_MODULES = (
    "tune_mlp.train",
    "tune_mlp.search.cli",
    "tune_mlp.export",
    "tune_mlp.predict",
    "tune_mlp.mnist_wheel",
    "tune_mlp.study.compare_losses",
    "tune_mlp.study.mnist_configs",
    "analysis.__main__",
)


def flags_without_help(help_text: str) -> list[str]:
    """The option lines of ``--help`` output with no help after them (on the line, or the next one)."""
    lines = help_text.splitlines()
    missing = []
    for index, line in enumerate(lines):
        match = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if not match:
            continue
        text = match.group(2)
        if text is None and index + 1 < len(lines) and re.match(r"^\s{6,}\S", lines[index + 1]):
            text = lines[index + 1].strip()
        if not text or text.startswith("(default:"):
            missing.append(match.group(1))
    return missing


@pytest.mark.parametrize("module", CLI_MODULES)
def test_every_flag_of_every_cli_has_a_line_of_help(module: str) -> None:
    parser = importlib.import_module(module).build_parser()
    text = parser.format_help()
    assert "--help" in text and flags_without_help(text) == [], flags_without_help(text)
    assert len(re.findall(r"^  -", text, flags=re.MULTILINE)) == len(
        [a for a in parser._actions if a.option_strings]
    )  # the parse above saw every flag


def test_search_help_as_a_user_reads_it() -> None:
    out = subprocess.run([sys.executable, "-m", "tune_mlp.search", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert flags_without_help(out.stdout) == []
    for flag in ("--samples SAMPLES", "--max_epochs MAX_EPOCHS, --max-epochs MAX_EPOCHS",
                 "--time_budget TIME_BUDGET, --time-budget TIME_BUDGET"):
        assert any(line.startswith(f"  {flag}") for line in out.stdout.splitlines()), flag
    assert "trials to run (default: run_cap" in out.stdout and "ASHA's max_t, the most epochs" in out.stdout
