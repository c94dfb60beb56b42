"""What a time-budgeted search finds: the default search at 5 and 10 minutes, three searcher seeds each.

    python scripts/bench_budget.py                              # default space, 5m and 10m, seeds 0 1 2
    python scripts/bench_budget.py --space study                # the study's space
    python scripts/bench_budget.py --budgets 2m --seeds 0       # one short sanity run
    python scripts/bench_budget.py --budgets 10m --samples 0    # no --samples: trials until the budget ends

Each run is the CLI a user types (``python -m tune_mlp.search --samples 20 --time-budget B --seed S``,
a fresh local Ray each time, W&B off); then the best checkpoint (best.json) is scored once on the
test set. Prints per run the wall time, trials, best validation and test accuracy, then the medians
per budget. Needs a quiet machine: it is a benchmark, not a test (20-30 minutes for the defaults).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_search(space: str, budget: str, seed: int, samples: int, storage: Path) -> dict[str, float]:
    """One budgeted search through the CLI (``samples`` 0: no --samples); its wall time, trials and best scores."""
    name = f"bench-{Path(space).stem}-{budget}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    count = ["--samples", str(samples)] if samples else []
    command = [sys.executable, "-m", "tune_mlp.search", "--space", space, *count,
               "--time-budget", budget, "--seed", str(seed), "--no_wandb", "--storage-path", str(storage),
               "--name", name]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    summary = json.loads((storage / name / "best.json").read_text())
    return {
        "wall_seconds": wall,
        "trials": float(summary["trials"]),
        "best_val": float(summary["best"]["score"]),
        "test": test_accuracy(summary["best"]["checkpoint"]),
    }


def test_accuracy(checkpoint_dir: str) -> float:
    from tune_mlp.data import load_splits
    from tune_mlp.mlp.checkpoint import load_checkpoint
    from tune_mlp.mlp.evaluate import evaluate_weights

    checkpoint = load_checkpoint(checkpoint_dir)
    config = checkpoint.config
    splits = load_splits(config.dataset, None, config.val_fraction, config.split_seed)
    return evaluate_weights(config, checkpoint.weights, splits.x_test, splits.y_test).accuracy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="default")
    parser.add_argument("--budgets", nargs="+", default=["5m", "10m"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=20, help="0: none given, so trials run until the budget ends")
    parser.add_argument("--storage-path", default=str(REPO / "ray_results"))
    args = parser.parse_args()

    storage = Path(args.storage_path).resolve()
    print(f"{'budget':>7} {'seed':>4} {'wall s':>7} {'trials':>6} {'best val':>8} {'test':>7}", flush=True)
    for budget in args.budgets:
        rows = []
        for seed in args.seeds:
            row = run_search(args.space, budget, seed, args.samples, storage)
            rows.append(row)
            print(f"{budget:>7} {seed:>4} {row['wall_seconds']:>7.0f} {row['trials']:>6.0f} "
                  f"{row['best_val']:>8.4f} {row['test']:>7.4f}", flush=True)  # fmt: skip
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"{budget:>7} {'med':>4} {median['wall_seconds']:>7.0f} {median['trials']:>6.0f} "
              f"{median['best_val']:>8.4f} {median['test']:>7.4f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
