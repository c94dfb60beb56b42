"""Train a search space's configs in full and record every epoch: the learning-curve table replay runs on.

    python scripts/make_curve_table.py --space study --seeds 0 1 2            # every one of the 160 configs
    python scripts/make_curve_table.py --space default --sample 150 --seeds 0 # 150 configs drawn from the space

Each row is one epoch of one (config, training seed): the config's sampled values, then train / validation /
test loss and accuracy and the epoch's training and evaluation seconds (one thread per run, like a trial on
one CPU). ``epochs`` is the largest any config of the space asks for: with a constant learning rate a
5-epoch config is the first 5 epochs of its 8-epoch twin (same seed, same order), so the study's 320
combinations are its 160 configs trained 8 epochs. Cosine spaces are trained at the space's ``--epochs``
(ASHA's max_t), which is what a trial of that search trains.

Resumable: rows are appended (gzip members) as each run ends, and runs already in the file are skipped, so
the command can be stopped and run again, in several sessions. ``--workers`` runs that many processes;
each is replaced after ``--runs-per-worker`` runs, since TensorFlow never frees a compiled XLA program.
The file's sidecar ``<table>.json`` says how it was made (command, machine, versions, dates).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import itertools
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tune_mlp.replay.table import CURVE_COLUMNS, read_rows, run_key  # noqa: E402

_SPLITS: Any = None  # one copy of the data per worker process


def space_configs(space: str, sample: int | None, sample_seed: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The sampled keys (without ``epochs``) and the configs: every grid point, or ``sample`` random draws."""
    from tune_mlp.search.space import load_sweep

    sweep = load_sweep(space)
    parameters = {key: spec for key, spec in sweep.space.parameters.items() if key != "epochs"}
    keys = [key for key, spec in parameters.items() if "values" in spec or "min" in spec]
    if sample is None:
        if any("values" not in parameters[key] for key in keys):
            raise SystemExit(f"error: space {space!r} has continuous parameters; give --sample N")
        grid = itertools.product(*(parameters[key]["values"] for key in keys))
        constants = {key: spec["value"] for key, spec in parameters.items() if "value" in spec}
        return keys, [constants | dict(zip(keys, values)) for values in grid]
    from ray import tune

    from tune_mlp.search.tune_space import to_tune_space

    space_dict = {key: value for key, value in to_tune_space(sweep.space).items() if key != "epochs"}
    rng = np.random.default_rng(sample_seed)
    configs = []
    for _ in range(sample):
        config = {}
        for key, value in space_dict.items():
            if isinstance(value, tune.search.sample.Domain):
                drawn = value.sample(random_state=int(rng.integers(2**31)))
                config[key] = float(f"{drawn:.6g}") if isinstance(drawn, float) else drawn  # as the table stores it
            else:
                config[key] = value
        configs.append(config)
    return keys, configs


def _init_worker(threads: int) -> None:
    global _SPLITS
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tune_mlp.data import load_splits
    from tune_mlp.mlp.trainer import configure_threads

    configure_threads(threads)
    _SPLITS = load_splits("fashion_mnist")


def train_curve(config_id: int, values: dict[str, Any], seed: int, epochs: int) -> list[dict[str, Any]]:
    """One full run: a row per epoch."""
    from tune_mlp.config import TrainConfig
    from tune_mlp.mlp.trainer import Trainer

    config = TrainConfig.from_dict(values | {"epochs": epochs, "seed": seed})
    trainer = Trainer(config, _SPLITS)
    rows = []
    try:
        for result in trainer.epochs():
            start = time.perf_counter()
            test_loss, test_accuracy = trainer.evaluate(_SPLITS.x_test, _SPLITS.y_test)
            eval_seconds = time.perf_counter() - start
            rows.append({
                "config_id": config_id, "seed": seed, "epoch": result.epoch,
                "train_loss": result.train_loss, "train_accuracy": result.train_accuracy,
                "val_loss": result.val_loss, "val_accuracy": result.val_accuracy,
                "test_loss": test_loss, "test_accuracy": test_accuracy,
                "epoch_seconds": result.epoch_seconds, "eval_seconds": eval_seconds,
            })  # fmt: skip
            if result.diverged:
                break
    finally:
        trainer.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="study", help="a space name or YAML file (default: study)")
    parser.add_argument("--sample", type=int, default=None, help="draw N configs instead of the whole grid")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the space's largest)")
    parser.add_argument("--out", type=Path, default=None, help="table file (default: the packaged table)")
    parser.add_argument("--workers", type=int, default=1, help="processes, one thread each (default 1)")
    parser.add_argument("--runs-per-worker", type=int, default=20, help="runs before a worker is replaced")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many new runs")
    args = parser.parse_args(argv)

    from tune_mlp.replay.table import TABLES_DIR
    from tune_mlp.search.space import load_sweep

    name = Path(args.space).stem if args.sample is None else f"{Path(args.space).stem}-{args.sample}"
    out = args.out or TABLES_DIR / f"{name}.csv.gz"
    keys, configs = space_configs(args.space, args.sample, args.sample_seed)
    epoch_spec = load_sweep(args.space).space.parameters.get("epochs", {})
    epochs = args.epochs or int(max(epoch_spec.get("values", [epoch_spec.get("value", 30)])))
    done = {run_key(row) for row in read_rows(out)} if out.exists() else set()
    todo = [(i, c, s) for s in args.seeds for i, c in enumerate(configs) if (i, s) not in done]
    todo = todo[: args.limit] if args.limit else todo
    print(f"{len(configs)} configs x {len(args.seeds)} seeds, {epochs} epochs: {len(done)} runs in {out}, "
          f"{len(todo)} to train", flush=True)  # fmt: skip
    _write_sidecar(out, args, keys, epochs, len(configs), configs)
    header = not out.exists()
    started = time.time()
    context = multiprocessing.get_context("spawn")
    finished, total = 0, len(todo)
    while todo:
        batch, todo = todo[: args.workers * args.runs_per_worker], todo[args.workers * args.runs_per_worker :]
        with concurrent.futures.ProcessPoolExecutor(
            args.workers, mp_context=context, initializer=_init_worker, initargs=(1,)
        ) as pool:
            futures = {pool.submit(train_curve, i, c, s, epochs): (i, c, s) for i, c, s in batch}
            for future in concurrent.futures.as_completed(futures):
                i, config, seed = futures[future]
                rows = [{**{key: config[key] for key in keys}, **row} for row in future.result()]
                with gzip.open(out, "at", newline="") as handle:
                    if header:
                        handle.write(",".join(keys + list(CURVE_COLUMNS)) + "\n")
                        header = False
                    for row in rows:
                        handle.write(",".join(_cell(row[key]) for key in keys + list(CURVE_COLUMNS)) + "\n")
                finished += 1
                last = rows[-1]
                print(f"[{finished}/{total}] config {i} seed {seed}: "
                      f"val {last['val_accuracy']:.4f} test {last['test_accuracy']:.4f}, "
                      f"{sum(r['epoch_seconds'] for r in rows):.1f} s, {time.time() - started:.0f} s so far",
                      flush=True)  # fmt: skip
    return 0


def _cell(value: Any) -> str:
    """Six significant digits: the table's floats are measurements, not bit patterns."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _write_sidecar(out: Path, args: argparse.Namespace, keys: list[str], epochs: int, n: int,
                   configs: list[dict[str, Any]]) -> None:  # fmt: skip
    import tensorflow as tf

    sidecar = out.with_name(out.name.replace(".csv.gz", ".json"))
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {"sessions": []}
    meta.update({
        "space": args.space, "keys": keys, "epochs": epochs, "configs": n, "seeds": args.seeds,
        "sample": args.sample, "sample_seed": args.sample_seed,
        "command": "python scripts/make_curve_table.py " + " ".join(sys.argv[1:]),
        "columns": keys + list(CURVE_COLUMNS),
        "constants": {k: v for k, v in configs[0].items() if k not in keys},
    })  # fmt: skip
    meta["sessions"].append({
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(), "tensorflow": tf.__version__, "workers": args.workers,
        "threads_per_run": 1,
    })  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
