"""Ray Tune overhead of a search: how much of the slots' wall time went into training.

    python scripts/bench_search.py --samples 20            # runs the default search, then measures it
    python scripts/bench_search.py ray_results/NAME        # measures a finished experiment

efficiency = sum of trials' training seconds / (wall seconds x concurrent slots). "Training" is the
time inside the compiled epoch loops (``epoch_seconds``); "trial" time adds evaluation, checkpoints
and reporting (Tune's ``time_this_iter_s``). Wall time runs from the first trial's start to the
last report (the driver's start-up, data loading and Ray start are shown separately when this
script runs the search itself).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402


def measure(experiment_dir: str, slots: int | None) -> dict[str, float]:
    """Every reported epoch of every part of the search (an extension is a subfolder), as analysis.accounting counts."""
    from analysis.accounting import utilisation

    root = Path(experiment_dir)
    frames = [
        pd.read_json(path, lines=True, convert_dates=False).assign(part="." if path.parent.parent == root else
                                                                   path.parent.parent.name)
        for path in [*root.glob("trial_*/result.json"), *root.glob("part-*/trial_*/result.json")]
    ]  # fmt: skip
    if not frames:
        raise SystemExit(f"error: {experiment_dir} holds no trial results (trial_*/result.json)")
    return utilisation(pd.concat(frames, ignore_index=True), slots)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", help="a finished experiment folder (else run a search)")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--space", default="default")
    parser.add_argument("--slots", type=int, default=None, help="concurrent trials (default: CPUs)")
    parser.add_argument("--wandb", action="store_true", help="log to W&B (offline without a key) as the CLI does")
    args = parser.parse_args()
    import os

    slots = args.slots or os.cpu_count() or 1
    experiment = args.experiment
    if experiment is None:
        from tune_mlp.search.tuner import SearchOptions, run_search

        started = time.perf_counter()
        options = SearchOptions(
            samples=args.samples,
            space=args.space,
            concurrency=slots,
            wandb_project="tune_mlp" if args.wandb else None,
            name=f"bench-{time.strftime('%Y%m%d-%H%M%S')}",
        )
        results = run_search(options)
        print(f"driver wall time, start to finish: {time.perf_counter() - started:.1f} s")
        experiment = results.experiment_path
    stats = measure(experiment, slots)
    for key, value in stats.items():
        print(f"{key:>20}: {value:,.3f}")
    verdict = "ok" if stats["training_efficiency"] >= 0.7 else "below the 0.7 target"
    print(f"training seconds / (wall x {slots} slots) = {stats['training_efficiency']:.2f} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
