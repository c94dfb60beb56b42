"""Soak test of a long search: does a trial worker that Ray Tune reuses for every trial stop growing?

    python scripts/bench_soak.py                    # 60 one-epoch trials of 4 structures, all in one worker
    python scripts/bench_soak.py --trials 120 --examples 5000

One Ray worker runs every trial (``reuse_actors=True``, one CPU per trial from ``tune.with_resources``, one CPU in
all), so TensorFlow stays loaded and every trial's programs stay in the same process. Each trial is the search's
own trainable (``tune_mlp.search.trainable.train_mlp``: one epoch on a slice of Fashion-MNIST, a checkpoint, a
report). The trials cycle through 4 structures (hidden size 64 or 128, Adam or momentum) while every scalar varies
from trial to trial (learning rate, weight decay, dropout rate, the optimizer's hyperparameters, warm-up, seed).
After each trial the worker appends its resident memory (``/proc/self/statm``) to a log. The script prints the RSS
after every trial and the growth per trial after the first distinct structures, in MB: from the trial that brought
the last new structure to the last trial, end to end and as a least-squares slope.

Run it on another checkout (an older trainer) with ``PYTHONPATH=that/checkout python that/checkout/scripts/...``
or this file copied there: the worker imports ``tune_mlp`` from the path the driver does, which it prints.
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

PAGE = os.sysconf("SC_PAGE_SIZE")
WIDTHS = (64, 128)
OPTIMIZERS = ("adam", "momentum")
STRUCTURES = len(WIDTHS) * len(OPTIMIZERS)


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE / 2**20


def trial_values(index: int) -> dict[str, Any]:
    """Trial ``index``'s config: the structure cycles with period STRUCTURES, the scalars on other periods."""
    return {
        "num_layers": 2,
        "hidden_size": WIDTHS[index % len(WIDTHS)],
        "optimizer": OPTIMIZERS[index // len(WIDTHS) % len(OPTIMIZERS)],
        "batch_size": 256,
        "epochs": 1,
        "learning_rate": 1e-3 * (1 + index % 7),
        "weight_decay": 1e-5 * (1 + index % 5),  # above 0 throughout: on/off is structure, the value is not
        "dropout": 0.05 * (1 + index % 3),  # likewise
        "momentum": 0.8 + 0.01 * (index % 11),
        "beta1": 0.8 + 0.01 * (index % 13),
        "beta2": 0.99 + 0.001 * (index % 5),
        "warmup_epochs": 0.1 * (index % 4),
        "seed": index,
    }


def soak_trial(config: dict[str, Any], splits: Any, log: str) -> None:
    """The search's trainable, then one line {pid, index, rss_mb, t, module} for this worker."""
    import tune_mlp
    from tune_mlp.search.trainable import train_mlp

    values = trial_values(config["index"])
    train_mlp(values, splits=splits, max_epochs=1)
    line = {"pid": os.getpid(), "index": config["index"], "rss_mb": rss_mb(), "t": time.time(),
            "module": tune_mlp.__file__}  # fmt: skip
    with open(log, "a") as out:
        out.write(json.dumps(line) + "\n")


def run_trials(trials: int, splits: Any, storage: Path) -> list[dict[str, Any]]:
    from ray import tune

    log = storage / "rss.jsonl"
    trainable = tune.with_resources(tune.with_parameters(soak_trial, splits=splits, log=str(log)), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"index": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True, max_concurrent_trials=1),
        run_config=tune.RunConfig(name="soak", storage_path=str(storage), verbose=0),
    )
    tuner.fit()
    return sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda row: row["t"])


def growth_after_structures(rows: list[dict[str, Any]]) -> dict[str, float]:
    """From the trial that brought the last new structure to the end: MB per trial, end to end and by slope."""
    seen: set[tuple[Any, ...]] = set()
    start = 0
    for position, row in enumerate(rows):
        values = trial_values(row["index"])
        structure = (values["hidden_size"], values["optimizer"])
        if structure not in seen:
            seen.add(structure)
            start = position
    rss = [row["rss_mb"] for row in rows[start:]]
    n = len(rss) - 1
    if n < 1:
        return {"after_trial": start + 1, "per_trial": float("nan"), "slope": float("nan")}
    mean_x, mean_y = n / 2, sum(rss) / len(rss)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(rss)) / sum((x - mean_x) ** 2 for x in range(n + 1))
    return {"after_trial": start + 1, "per_trial": (rss[-1] - rss[0]) / n, "slope": slope}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--examples", type=int, default=2000, help="training examples of the slice")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.trials < STRUCTURES + 2:
        parser.error(f"--trials must be at least {STRUCTURES + 2} (the {STRUCTURES} structures, then growth)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import ray

    from tune_mlp.data import load_splits

    splits = load_splits("fashion_mnist", args.data_dir, 0.1, 0, limit=args.examples)
    # The workers import what the driver imports (an older checkout on PYTHONPATH included).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [sys.path[0], os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soak-") as storage:
        rows = run_trials(args.trials, splits, Path(storage))
    wall = time.perf_counter() - started
    ray.shutdown()
    pids = sorted({row["pid"] for row in rows})
    print(f"{len(rows)} trials in {len(pids)} worker process(es), {wall:.0f} s; tune_mlp from {rows[0]['module']}")
    print("RSS (MB) after each trial: " + " ".join(f"{row['rss_mb']:.0f}" for row in rows))
    g = growth_after_structures(rows)
    print(
        f"RSS after trial {g['after_trial']} (the first {STRUCTURES} structures seen): "
        f"{rows[g['after_trial'] - 1]['rss_mb']:.0f} MB; after trial {len(rows)}: {rows[-1]['rss_mb']:.0f} MB"
    )
    print(f"growth per trial after the first distinct structures: {g['per_trial']:.2f} MB "
          f"(least-squares slope {g['slope']:.2f} MB)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
