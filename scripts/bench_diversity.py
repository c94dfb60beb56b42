"""What more ensemble members buy (issue 24, item 2): the ensemble chosen from several candidate pools, per search.

    python scripts/bench_diversity.py /tmp/budget_runs/bench-*-seed{0,1,2}-* --leading 5 --cache build/diversity
    python scripts/bench_diversity.py ray_results/NAME --leading 0          # the pools without training (seconds)

For each finished search the ensemble (``tune_mlp.deploy.ensemble.select_ensemble``: Caruana's greedy selection with
replacement on validation log loss, the product's guards) is chosen from:

- ``kept``: every kept checkpoint of every trial (today's default, ``tune_mlp.deploy.members``);
- ``best-of-trial``: the best checkpoint of every trial only;
- ``kept+seed k``: ``kept`` plus another training seed of the k leading configs (the k trials with the best
  validation score), each trained with the product's trainer (``tune_mlp.mlp.trainer.Trainer``, one thread, as a
  trial) for its best epoch count (the cosine schedule then ends there), the best validation epoch kept;
- ``best-of-trial+seed k``: the same with ``best-of-trial``.

Beside them the single best (what analysis and a plain export pick), and for the leading config alone: the trial's
best with its new seed (seed diversity) against the new run's three best epochs, adjacent or at least ``--spacing``
epochs apart (snapshot diversity, what a "checkpoints a few epochs apart" rule would keep).

Every choice is made on the search's own validation split; the test set is loaded once all choices are made and
read once per reported model. Training seconds: measured here (wall clock, this machine's load) and what the same
epochs cost the trial inside the search (its own ``epoch_seconds``). ``--cache DIR`` keeps the retrained runs
(checkpoints in the product's format) so that a second run, or a larger ``--leading``, trains only what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tune_mlp.deploy import members as kept  # noqa: E402
from tune_mlp.deploy.ensemble import accuracy, average, log_loss, select_ensemble  # noqa: E402
from tune_mlp.deploy.members import Member  # noqa: E402

SNAPSHOTS = 3  # the search's num_to_keep
SPACING = 5  # epochs between snapshots for the "spaced" pool
KEEP_EPOCHS = 12  # a retrained run keeps this many of its best epochs (enough to find 3 spaced ones)


@dataclass
class Retrained:
    """Another seed of one leading config: its best epochs (best first) and what training cost."""

    source: Member  # the trial's best checkpoint it copies
    snapshots: list[Member]  # up to KEEP_EPOCHS epochs, best validation score first
    seconds: float  # wall clock here, compile included
    search_seconds: float  # the same epochs inside the search (the trial's own epoch_seconds)

    @property
    def best(self) -> Member:
        return self.snapshots[0]


def best_of_trial(members: list[Member]) -> list[int]:
    """The index of each trial's best kept checkpoint (the first on ties), in the search's order."""
    best: dict[str, int] = {}
    for index, member in enumerate(members):
        if member.trial_id not in best or member.score > members[best[member.trial_id]].score:
            best[member.trial_id] = index
    return sorted(best.values())


def leading(members: list[Member], k: int) -> list[Member]:
    """The best checkpoint of each of the k trials with the best validation score, best first."""
    ranked = sorted(best_of_trial(members), key=lambda i: (-members[i].score, i))
    return [members[i] for i in ranked[:k]]


def search_seconds(member: Member) -> float:
    """What the epochs up to this checkpoint cost its trial in the search (its history's epoch_seconds)."""
    from tune_mlp.mlp.checkpoint import load_checkpoint

    history = load_checkpoint(member.checkpoint).history
    return float(sum(h["epoch_seconds"] for h in history[: member.epoch]))


def retrain(source: Member, splits: Any, cache: Path | None) -> Retrained:
    """``source``'s config with the next seed, trained for ``source.epoch`` epochs; the best epochs kept."""
    from tune_mlp.mlp.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from tune_mlp.mlp.trainer import Trainer

    config = dataclasses.replace(source.config, epochs=source.epoch, seed=source.config.seed + 1)
    name = f"{source.trial_id}-seed{config.seed}-epochs{config.epochs}"
    folder = cache / name if cache else None
    if folder and (folder / "done.json").is_file():
        done = json.loads((folder / "done.json").read_text())
        snapshots = [_member(name, load_checkpoint(folder / f"epoch_{e:04d}"), str(folder)) for e in done["epochs"]]
        return Retrained(source, snapshots, done["seconds"], search_seconds(source))
    trainer = Trainer(config, splits)
    started = time.perf_counter()
    best: list[tuple[float, int, list[np.ndarray]]] = []  # (val accuracy, epoch, weights), best first
    for result in trainer.epochs():
        if result.diverged:
            break
        best.append((result.val_accuracy, result.epoch, trainer.weights()))
        best = sorted(best, key=lambda b: (-b[0], b[1]))[:KEEP_EPOCHS]  # ties: the earlier epoch, as Ray keeps
    seconds = time.perf_counter() - started
    trainer.close()
    snapshots = []
    for val, epoch, weights in best:
        checkpoint = Checkpoint(config, weights, epoch, metrics={"val_accuracy": val, "epoch": epoch})
        if folder:
            save_checkpoint(folder / f"epoch_{epoch:04d}", checkpoint)
        snapshots.append(_member(name, checkpoint, str(folder or "(memory)")))
    if folder:
        (folder / "done.json").write_text(json.dumps({"epochs": [s.epoch for s in snapshots], "seconds": seconds}))
    return Retrained(source, snapshots, seconds, search_seconds(source))


def _member(name: str, checkpoint: Any, where: str) -> Member:
    score = float(checkpoint.metrics["val_accuracy"])
    return Member(name, checkpoint.epoch, f"{where}/epoch_{checkpoint.epoch:04d}", score, checkpoint.config,
                  checkpoint.weights)  # fmt: skip


def spaced(snapshots: list[Member], count: int = SNAPSHOTS, spacing: int = SPACING) -> list[Member]:
    """The best `count` snapshots, each at least `spacing` epochs from those taken before it (best first)."""
    chosen: list[Member] = []
    for snapshot in snapshots:
        if all(abs(snapshot.epoch - c.epoch) >= spacing for c in chosen):
            chosen.append(snapshot)
        if len(chosen) == count:
            break
    return chosen


def choose(pool: list[Member], cache: dict[int, np.ndarray], x_val: np.ndarray, y_val: np.ndarray) -> dict[int, float]:
    """The selection over `pool` on validation: {id(member): weight} of the members it keeps."""
    missing = [m for m in pool if id(m) not in cache]
    if missing:
        cache.update(zip(map(id, missing), kept.member_probabilities(missing, x_val)))
    selection = select_ensemble(np.stack([cache[id(m)] for m in pool]), y_val)
    return {id(pool[i]): float(selection.weights[i]) for i in selection.chosen}


def bench(experiment: str, k_max: int, data_dir: str | None, cache: Path | None, log: Any) -> dict[str, Any]:
    from tune_mlp.data import load_splits

    record, members = kept.kept_checkpoints(experiment)
    kept.check_members(members, experiment)
    config = members[0].config
    x_val, y_val = kept.validation_split(record, config, data_dir)
    everyone = {id(m): m for m in members}
    val: dict[int, np.ndarray] = {}
    pools: dict[str, list[Member]] = {"kept": members, "best-of-trial": [members[i] for i in best_of_trial(members)]}
    retrained: list[Retrained] = []
    if k_max > 0:
        limit = kept.SMOKE_TRAIN_EXAMPLES if record.options.get("smoke_test") else None
        splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed, limit=limit)
        assert np.array_equal(splits.y_val, y_val), "the training split is not the one the trials were scored on"
        for source in leading(members, k_max):
            log(f"  training {source.trial_id} (config of val {source.score:.4f}) for {source.epoch} epochs ...")
            retrained.append(retrain(source, splits, cache / Path(experiment).name if cache else None))
            log(f"    {retrained[-1].seconds:.0f} s here ({retrained[-1].search_seconds:.0f} s in the search); "
                f"best epoch {retrained[-1].best.epoch}, val {retrained[-1].best.score:.4f}")  # fmt: skip
        for k in range(1, len(retrained) + 1):
            extra = [r.best for r in retrained[:k]]
            pools[f"kept+seed {k}"] = members + extra
            pools[f"best-of-trial+seed {k}"] = pools["best-of-trial"] + extra
        first = retrained[0]
        trial_kept = [m for m in members if m.trial_id == first.source.trial_id]
        pools["lead: trial's kept (adjacent)"] = trial_kept
        pools["lead: new seed's 3 best (adjacent)"] = first.snapshots[:SNAPSHOTS]
        pools[f"lead: new seed's 3 best ≥{SPACING} epochs apart"] = spaced(first.snapshots)
        pools["lead: new seed's 6 best (adjacent)"] = first.snapshots[: 2 * SNAPSHOTS]
        pools["lead: trial's best + new seed's best"] = [first.source, first.best]
    for r in retrained:
        everyone.update({id(m): m for m in r.snapshots})
    chosen = {name: choose(pool, val, x_val, y_val) for name, pool in pools.items()}  # every choice, validation only
    best = members[kept.single_best(members, record)]
    chosen = {"single best": {id(best): 1.0}, **chosen}
    if retrained:
        chosen["lead: new seed's best alone"] = {id(retrained[0].best): 1.0}

    x_test, y_test = kept.load_test_set(config, data_dir)  # every choice is made: only now the test set
    needed = sorted({i for weights in chosen.values() for i in weights})
    test = dict(zip(needed, kept.member_probabilities([everyone[i] for i in needed], x_test)))
    rows = {}
    for name, weights in chosen.items():
        ids, w = list(weights), list(weights.values())
        for i in ids:
            val.setdefault(i, kept.member_probabilities([everyone[i]], x_val)[0])
        v, t = average(np.stack([val[i] for i in ids]), w), average(np.stack([test[i] for i in ids]), w)
        trained = [r for r in retrained if any(id(s) in weights for s in r.snapshots)]
        k = int(name.split("seed ")[1]) if "+seed " in name else None
        rows[name] = {
            "members": len(ids),
            "parameters": int(sum(everyone[i].parameters for i in ids)),
            "val_accuracy": accuracy(v, y_val),
            "val_loss": log_loss(v, y_val),
            "test_accuracy": accuracy(t, y_test),
            "test_loss": log_loss(t, y_test),
            "new_members_used": len(trained),
            "train_seconds": sum(r.seconds for r in retrained[:k]) if k else 0.0,
            "search_seconds": sum(r.search_seconds for r in retrained[:k]) if k else 0.0,
        }
    budget = record.options.get("time_budget")
    return {"experiment": experiment, "kept": len(members), "trials": len(pools["best-of-trial"]),
            "time_budget": budget, "rows": rows,
            "retrained": [{"trial_id": r.source.trial_id, "epochs": r.source.epoch, "source_val": r.source.score,
                           "new_val": r.best.score, "new_best_epoch": r.best.epoch, "seconds": r.seconds,
                           "search_seconds": r.search_seconds} for r in retrained]}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    lines = [
        f"#### {Path(result['experiment']).name}: {result['trials']} trials, {result['kept']} kept checkpoints, "
        f"budget {result['time_budget']}",
        "",
        "| pool | members | parameters | val acc | val loss | test acc | test loss | Δ test vs kept | "
        "training s (here / in search) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = result["rows"]["kept"]["test_accuracy"]
    for name, r in result["rows"].items():
        cost = f"{r['train_seconds']:.0f} / {r['search_seconds']:.0f}" if r["train_seconds"] else ""
        lines.append(
            f"| {name} | {r['members']} | {r['parameters']:,} | {r['val_accuracy']:.4f} | {r['val_loss']:.4f} | "
            f"{r['test_accuracy']:.4f} | {r['test_loss']:.4f} | {r['test_accuracy'] - base:+.4f} | {cost} |"
        )
    return "\n".join(lines)


def medians(results: list[dict[str, Any]]) -> str:
    names = [n for n in results[0]["rows"] if all(n in r["rows"] for r in results)]
    lines = [
        f"#### median over {len(results)} searches",
        "",
        "| pool | members | test acc | Δ test vs kept (each search) | test loss | training s in search |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name in names:
        rows = [r["rows"][name] for r in results]
        gains = [r["rows"][name]["test_accuracy"] - r["rows"]["kept"]["test_accuracy"] for r in results]
        lines.append(
            f"| {name} | {statistics.median(x['members'] for x in rows):.0f} | "
            f"{statistics.median(x['test_accuracy'] for x in rows):.4f} | {' '.join(f'{g:+.4f}' for g in gains)} | "
            f"{statistics.median(x['test_loss'] for x in rows):.4f} | "
            f"{statistics.median(x['search_seconds'] for x in rows):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+", help="finished search folders")
    parser.add_argument("--leading", type=int, default=5, help="train another seed of this many leading configs")
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    parser.add_argument("--cache", type=Path, default=None, help="keep the retrained runs here (and reuse them)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1: one trial's share)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.leading < 0:
        parser.error(f"argument --leading: {args.leading} is below 0")
    from tune_mlp.mlp.trainer import configure_threads

    configure_threads(args.threads)
    results = []
    for experiment in args.experiments:
        print(f"# {experiment}", flush=True)
        results.append(bench(experiment, args.leading, args.data_dir, args.cache, lambda s: print(s, flush=True)))
        print(table(results[-1]) + "\n", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    if len(results) > 1:
        print(medians(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
