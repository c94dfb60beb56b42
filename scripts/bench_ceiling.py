"""How high one MLP of this family goes on Fashion-MNIST, trained by hand at full length: the ceiling a search meets.

    python scripts/bench_ceiling.py                  # the four configs below, seed 0 (~9 minutes on 2 cores)
    python scripts/bench_ceiling.py --seeds 0 1 2    # the same with three training seeds

Each run is the command a user types (``python -m tune_mlp.train ... --no_wandb``): the best
validation epoch is kept and scored once on the test set. The configs are the best the searches
found (2x512 Nadam, dropout, cosine) and what more capacity or more epochs would buy on top of it.
A search cannot pick a better model than the best of these unless the family itself changes.
Needs a quiet machine: it is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The searches' winners and the capacity / length around them (flags of ``python -m tune_mlp.train``).
_BEST = {"optimizer": "nadam", "batch_size": 256, "lr_schedule": "cosine", "weight_decay": 0}
CONFIGS = {
    "2x512, dropout 0.3, 40 epochs (the searches' winner)": {
        **_BEST, "num_layers": 2, "hidden_size": 512, "dropout": 0.3, "learning_rate": 8e-4, "epochs": 40},
    "2x512, dropout 0.4, 80 epochs (longer)": {
        **_BEST, "num_layers": 2, "hidden_size": 512, "dropout": 0.4, "learning_rate": 8e-4, "epochs": 80},
    "3x512, dropout 0.3, 50 epochs (deeper)": {
        **_BEST, "num_layers": 3, "hidden_size": 512, "dropout": 0.3, "learning_rate": 5e-4, "epochs": 50},
    "2x1024, dropout 0.4, 40 epochs (wider)": {
        **_BEST, "num_layers": 2, "hidden_size": 1024, "dropout": 0.4, "learning_rate": 5e-4, "epochs": 40},
}  # fmt: skip


def train_arguments(flags: dict[str, object], seed: int, output: Path) -> list[str]:
    """The arguments of ``python -m tune_mlp.train`` for one run of ``flags`` (TrainConfig field names)."""
    return ["--no_wandb", "--no_progress", "--seed", str(seed), "--output", str(output),
            *(f"--{key}={value}" for key, value in flags.items())]  # fmt: skip


def train(flags: dict[str, object], seed: int, output: Path) -> dict[str, float]:
    """One full-length run through the CLI; its best validation epoch, that epoch's test accuracy and the wall."""
    command = [sys.executable, "-m", "tune_mlp.train", *train_arguments(flags, seed, output)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    best = json.loads((output / "metrics.json").read_text())["best"]
    return {"seconds": time.perf_counter() - started, "epoch": best["epoch"], "val": best["score"],
            "test": best["test_accuracy"]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (init, shuffling, dropout)")
    args = parser.parse_args()
    print("| config | seed | best epoch | best val | test | wall |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_ceiling-") as scratch:
        for index, (label, flags) in enumerate(CONFIGS.items()):
            for seed in args.seeds:
                run = train(flags, seed, Path(scratch) / f"run{index}-seed{seed}")
                print(f"| {label} | {seed} | {run['epoch']} | {run['val']:.4f} | {run['test']:.4f} | "
                      f"{run['seconds']:.0f} s |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
