"""The train CLI takes the assignment's short flags and spellings, without argparse prefix clashes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
