"""Soak test of a long search: do the reused trial actors' memory stay flat over many trials?

    python scripts/bench_soak.py                      # 60 trials, with and without releasing each trial's Trainer
    python scripts/bench_soak.py --trials 80 --phases release

Trials reuse their Ray actors (``reuse_actors=True``, as ``tune_mlp.search``), so TensorFlow stays loaded and
every new trial builds new ``tf.function``s and XLA programs in the same process. Each trial here is the
search's own trainable (``tune_mlp.trainable.train_mlp``: one epoch on a slice of Fashion-MNIST, a varying
width so every trial compiles new programs); after it returns, the actor appends its resident memory
(``/proc/self/statm``) to a log. The script prints each worker's RSS after every trial and the growth from
trial 10 to the last trial of that worker's series, per phase:

- ``keep``: the Trainer is not released at the end of a trial (``Trainer.close`` made a no-op, as before);
- ``release``: as the search runs (``train_mlp`` closes its Trainer: see ``Trainer.close``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE / 2**20


def soak_trial(config: dict[str, Any], splits: Any, max_epochs: int, log: str, keep: bool) -> None:
    """The search's trainable, then one line {pid, trial, rss_mb} for this actor."""
    from ray import tune

    from tune_mlp import trainer
    from tune_mlp.trainable import train_mlp

    if keep:
        trainer.Trainer.close = lambda self: None  # the behaviour before the release: nothing let go
    train_mlp(config, splits=splits, max_epochs=max_epochs)
    line = {"pid": os.getpid(), "trial": tune.get_context().get_trial_id(), "rss_mb": rss_mb(), "t": time.time()}
    with open(log, "a") as out:
        out.write(json.dumps(line) + "\n")


def run_phase(keep: bool, trials: int, splits: Any, workers: int, storage: Path) -> list[dict[str, Any]]:
    from ray import tune

    log = storage / f"rss-{'keep' if keep else 'release'}.jsonl"
    trainable = tune.with_resources(
        tune.with_parameters(soak_trial, splits=splits, max_epochs=1, log=str(log), keep=keep), {"cpu": 1}
    )
    space = {
        "num_layers": 2,
        "hidden_size": tune.grid_search([32 + 8 * i for i in range(trials)]),  # a new XLA program per trial
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


def growth_table(rows: list[dict[str, Any]], start: int) -> list[str]:
    """Per worker: RSS after each trial, and growth from trial ``start`` (1-based, in the whole run) to the end."""
    rows = sorted(rows, key=lambda row: row["t"])
    lines = []
    for pid in sorted({row["pid"] for row in rows}):
        own = [(index + 1, row["rss_mb"]) for index, row in enumerate(rows) if row["pid"] == pid]
        lines.append(f"  worker pid {pid}: " + " ".join(f"{rss:.0f}" for _, rss in own))
        after = [rss for index, rss in own if index >= start]
        if len(after) >= 2:
            lines.append(
                f"    from trial {start} to {len(rows)}: {after[0]:.0f} -> {after[-1]:.0f} MB "
                f"({100 * (after[-1] / after[0] - 1):+.1f} %)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="concurrent trials (reused actors)")
    parser.add_argument("--examples", type=int, default=2000, help="training examples of the slice")
    parser.add_argument("--phases", nargs="+", default=["keep", "release"], choices=["keep", "release"])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import ray

    from tune_mlp.data import load_splits

    splits = load_splits("fashion_mnist", args.data_dir, 0.1, 0, limit=args.examples)
    for phase in args.phases:
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        with tempfile.TemporaryDirectory(prefix="soak-") as storage:
            rows = run_phase(phase == "keep", args.trials, splits, args.workers, Path(storage))
        ray.shutdown()
        print(f"{phase}: {len(rows)} trials on {args.workers} reused actors, RSS (MB) after each trial:")
        print("\n".join(growth_table(rows, start=10)), flush=True)


if __name__ == "__main__":
    main()
