"""Soak test of a long search: does the trial workers' memory stay flat over many trials?

    python scripts/bench_soak.py                      # 60 trials: actors reused forever, then as the search does
    python scripts/bench_soak.py --trials 80 --phases recycle

Trials reuse their Ray actors (``reuse_actors=True``, as ``tune_mlp.search``), so TensorFlow stays loaded and
every new trial builds new ``tf.function``s and XLA programs in the same process, which TensorFlow never
evicts (~10 MB a trial). Each trial here is the search's own trainable (``tune_mlp.search.trainable.train_mlp``: one
epoch on a slice of Fashion-MNIST, widths 64-256 in turn; every trial compiles new programs) with the search's
resource request (``tune_mlp.search.actors.TrialResources``); after it returns, the actor appends its resident memory
(``/proc/self/statm``) to a log. The script prints each worker's RSS after every trial, then, over the whole
run in trial order, the RSS after trial 10, the highest RSS any worker reached from trial 10 on, and the RSS
after the last trial, per phase:

- ``reuse``: an actor runs every trial it is given (``--trials-per-actor 0``, as before);
- ``recycle``: as the search runs (a fresh actor every ``--trials-per-actor`` trials per slot, default 4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tune_mlp.search.actors import default_trials_per_actor  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE / 2**20


def soak_trial(config: dict[str, Any], splits: Any, max_epochs: int, log: str) -> None:
    """The search's trainable, then one line {pid, trial, rss_mb} for this actor."""
    from ray import tune

    from tune_mlp.search.trainable import train_mlp

    train_mlp({key: value for key, value in config.items() if key != "index"}, splits=splits, max_epochs=max_epochs)
    line = {"pid": os.getpid(), "trial": tune.get_context().get_trial_id(), "rss_mb": rss_mb(), "t": time.time()}
    with open(log, "a") as out:
        out.write(json.dumps(line) + "\n")


def run_phase(phase: str, trials_per_actor: int, trials: int, splits: Any, workers: int,
              storage: Path) -> list[dict[str, Any]]:  # fmt: skip
    from ray import tune
    from tune_mlp.search.actors import GENERATION_KEY, TrialResources, generation

    log = storage / f"rss-{phase}.jsonl"
    trainable = tune.with_resources(
        tune.with_parameters(soak_trial, splits=splits, max_epochs=1, log=str(log)), TrialResources(1)
    )
    per_actor = trials_per_actor if phase == "recycle" else 0
    # Every trial compiles new XLA programs whatever its width (new tf.functions); the widths cycle so the
    # work stays the same from the first trial to the last and only what the process keeps can grow. The grid
    # stamps each trial's worker generation as the search's searcher does (tune_mlp.search.actors).
    space = {
        "index": tune.grid_search(list(range(trials))),
        "num_layers": 2,
        "hidden_size": tune.sample_from(lambda spec: 64 * (1 + spec.config.index % 4)),
        GENERATION_KEY: tune.sample_from(lambda spec: generation(spec.config.index, per_actor, workers)),
        "batch_size": 256,
        "epochs": 1,
    }
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True, max_concurrent_trials=workers),
        run_config=tune.RunConfig(name=log.stem, storage_path=str(storage), verbose=0),
    )
    tuner.fit()
    return [json.loads(line) for line in log.read_text().splitlines()]


def growth(rows: list[dict[str, Any]], start: int) -> dict[str, float]:
    """RSS after trial ``start`` (1-based, in finishing order), the most any worker held from then on, and the last."""
    rss = [row["rss_mb"] for row in sorted(rows, key=lambda row: row["t"])]
    at_start, peak = rss[start - 1], max(rss[start - 1 :])
    return {
        "start": at_start,
        "peak": peak,
        "end": rss[-1],
        "peak_growth": 100 * (peak / at_start - 1),
        "end_growth": 100 * (rss[-1] / at_start - 1),
    }


def growth_table(rows: list[dict[str, Any]], start: int) -> list[str]:
    """Per worker: RSS after each of its trials; then the growth over the whole run from trial ``start``."""
    rows = sorted(rows, key=lambda row: row["t"])
    lines = []
    for pid in sorted({row["pid"] for row in rows}, key=lambda pid: next(r["t"] for r in rows if r["pid"] == pid)):
        own = [row["rss_mb"] for row in rows if row["pid"] == pid]
        lines.append(f"  worker pid {pid} ({len(own)} trials): " + " ".join(f"{rss:.0f}" for rss in own))
    g = growth(rows, start)
    lines.append(
        f"  trial {start} -> {len(rows)}: {g['start']:.0f} -> {g['end']:.0f} MB ({g['end_growth']:+.1f} %), "
        f"highest from trial {start} on: {g['peak']:.0f} MB ({g['peak_growth']:+.1f} %) "
        f"in {len({row['pid'] for row in rows})} worker processes"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="concurrent trials (reused actors)")
    parser.add_argument("--examples", type=int, default=2000, help="training examples of the slice")
    parser.add_argument("--phases", nargs="+", default=["reuse", "recycle"], choices=["reuse", "recycle"])
    parser.add_argument("--trials-per-actor", type=int, default=default_trials_per_actor(2),
                        help="the recycle phase's (default: the search's up to 8 slots)")  # fmt: skip
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import ray

    from tune_mlp.data import load_splits

    splits = load_splits("fashion_mnist", args.data_dir, 0.1, 0, limit=args.examples)
    for phase in args.phases:
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="soak-") as storage:
            rows = run_phase(phase, args.trials_per_actor, args.trials, splits, args.workers, Path(storage))
        wall = time.perf_counter() - started
        ray.shutdown()
        print(f"{phase}: {len(rows)} trials, {args.workers} at a time, {wall:.0f} s; RSS (MB) after each trial:")
        print("\n".join(growth_table(rows, start=10)), flush=True)


if __name__ == "__main__":
    main()
