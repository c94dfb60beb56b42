"""Does a two-objective search find a better accuracy–parameters front than picking from a single-objective one?
(issue 24, item 4.) Replayed over a recorded learning-curve table: no Ray cluster, no training.

    python scripts/bench_front.py                                   # default-150 table, 20 trials, 2 workers, 20 seeds
    python scripts/bench_front.py --samples 20 40 --seeds 30 --searchers ours optuna-mo

Each searcher replays a search (``tune_mlp.replay.simulate``: Tune's controller in simulated time, the real
searcher and scheduler) of ``--samples`` trials on ``--workers`` workers. The checkpoints it would keep are each
trial's best 3 epochs by validation accuracy (``num_to_keep`` 3), a point (parameters, validation accuracy) each;
``--pick smallest-within 0.005`` chooses among them as ``tune_mlp.deploy.pareto`` does. Per replay:

- the hypervolume of the kept checkpoints' front (validation accuracy up, parameters down) against the reference
  point (accuracy ``REF_ACCURACY``, ``REF_PARAMETERS`` parameters), in accuracy × million parameters; and of the
  same front's checkpoints scored by their test accuracy (reported, not chosen on);
- the best checkpoint (by validation) and the smallest within 0.005 of it: parameters and test accuracy.

The searchers: ``ours`` (today's default: HyperOpt TPE + ASHA, single objective), ``optuna`` (Optuna's TPE + ASHA,
single objective), ``random`` + ASHA, and the two-objective ones through Ray's ``OptunaSearch(metric=[
"val_accuracy", "parameters"], mode=["max", "min"])``: ``optuna-mo`` (Optuna's TPE, multi-objective) with ASHA on
validation accuracy as a real search would run it, and ``nsga2`` (``NSGAIISampler``, population 10) with ASHA.
``NAME-fifo``: the same searcher without early stopping (every trial trains its 30 epochs: about twice the time).
A trial's parameters are those of the table config it replays.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tune_mlp.deploy.pareto import pareto_front, smallest_within  # noqa: E402
from tune_mlp.replay.table import TABLES_DIR  # noqa: E402

REF_ACCURACY = 0.85  # the hypervolume's reference point: below every front point that matters here ...
REF_PARAMETERS = 1_250_000  # ... and above the default space's largest model (4 × 512: 1,195,018 parameters)
KEEP = 3  # the search's num_to_keep: checkpoints kept per trial, by validation accuracy
TOLERANCE = 0.005  # --pick smallest-within 0.005
OBJECTIVES = ["val_accuracy", "parameters"]
MODES = ["max", "min"]
SEARCHERS = "ours optuna random optuna-mo nsga2 ours-fifo optuna-fifo random-fifo optuna-mo-fifo".split()


def parameters(config: dict[str, Any], inputs: int = 784, classes: int = 10) -> int:
    """Weights and biases of the MLP a config builds (``num_layers`` hidden layers of ``hidden_size``)."""
    layers, width = int(config["num_layers"]), int(config["hidden_size"])
    sizes = [inputs] + [width] * layers + [classes]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def hypervolume(costs: np.ndarray, scores: np.ndarray) -> float:
    """Area dominated by the points (cost down, score up) and bounded by (REF_PARAMETERS, REF_ACCURACY), in score ×
    million parameters."""
    inside = (costs < REF_PARAMETERS) & (scores > REF_ACCURACY)
    costs, scores = costs[inside], scores[inside]
    if not len(costs):
        return 0.0
    front = pareto_front(costs, scores)
    order = np.argsort(costs[front], kind="stable")
    c, s = costs[front][order], scores[front][order]  # cheapest first, so the score rises along it
    below = np.concatenate([[REF_ACCURACY], s[:-1]])
    return float(np.sum((s - below) * (REF_PARAMETERS - c)) / 1e6)


class WithParameters:
    """Forwards a Tune searcher and adds each trial's ``parameters`` to its results, as a two-objective trainable
    would report them (the parameters of the table config the replay trains)."""

    def __init__(self, inner: Any, mapper: Any, table: Any) -> None:
        from ray.tune.search import Searcher

        class Forward(Searcher):
            def __init__(self) -> None:
                super().__init__(metric=inner.metric, mode=inner.mode)
                self.sizes: dict[str, int] = {}

            def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
                return inner.set_search_properties(metric, mode, config, **spec)

            def set_max_concurrency(self, max_concurrent: int) -> bool:
                return inner.set_max_concurrency(max_concurrent)

            def suggest(self, trial_id: str) -> dict | None:
                config = inner.suggest(trial_id)
                if isinstance(config, dict):
                    self.sizes[trial_id] = parameters(table.configs[mapper(config)])
                return config

            def on_trial_result(self, trial_id: str, result: dict) -> None:
                inner.on_trial_result(trial_id, {**result, "parameters": self.sizes[trial_id]})

            def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
                result = {**result, "parameters": self.sizes[trial_id]} if result else result
                inner.on_trial_complete(trial_id, result=result, error=error)

        self.searcher = Forward()


@dataclass(frozen=True)
class Front:
    searcher: str
    samples: int
    seed: int
    hv_val: float
    hv_test: float
    best_parameters: int
    best_test: float
    pick_parameters: int
    pick_test: float
    front_size: int
    duration: float  # simulated seconds


def replay(case: Any, searcher: str, samples: int, workers: int, seed: int) -> Front:
    """One replayed search and its kept checkpoints' front."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    from tune_mlp.replay.bench import _quiet
    from tune_mlp.replay.peers import ETA, GRACE, PEERS, Setting
    from tune_mlp.replay.simulate import ExactMapper, simulate

    table = case.table
    mapper = case.mapper or ExactMapper(table)
    setting = Setting(workers, seed, table.epochs)
    with _quiet():
        if searcher in PEERS:
            algo, scheduler = PEERS[searcher](setting)
        elif searcher.removesuffix("-fifo") in PEERS:  # the same searcher, every trial to its end
            algo, scheduler = PEERS[searcher.removesuffix("-fifo")](dataclasses.replace(setting, scheduler="fifo"))
        else:
            import optuna as ot
            from ray.tune.search.optuna import OptunaSearch

            ot.logging.set_verbosity(ot.logging.WARNING)
            if searcher == "nsga2":
                sampler = ot.samplers.NSGAIISampler(seed=seed, population_size=10)
            else:
                sampler = ot.samplers.TPESampler(seed=seed)
            optuna = OptunaSearch(space=case.space, metric=OBJECTIVES, mode=MODES, sampler=sampler)
            algo = ConcurrencyLimiter(WithParameters(optuna, mapper, table).searcher, max_concurrent=workers)
            scheduler = (
                FIFOScheduler()
                if searcher.endswith("-fifo")
                else ASHAScheduler(time_attr="epoch", max_t=table.epochs, grace_period=GRACE, reduction_factor=ETA)
            )
        run = simulate(table, algo, scheduler, space=case.space, workers=workers, samples=samples, seed=seed,
                       mapper=case.mapper)  # fmt: skip
    by_trial: dict[str, list[Any]] = {}
    for report in run.reports:
        if np.isfinite(report.val):
            by_trial.setdefault(report.trial_id, []).append(report)
    kept = [r for reports in by_trial.values() for r in sorted(reports, key=lambda r: (-r.val, r.epoch))[:KEEP]]
    costs = np.array([parameters(table.configs[r.row]) for r in kept], np.float64)
    val, test = np.array([r.val for r in kept]), np.array([r.test for r in kept])
    front = pareto_front(costs, val)
    best = int(np.lexsort((np.arange(len(val)), -val))[0])
    pick = smallest_within(costs, val, TOLERANCE)
    return Front(searcher, samples, seed, hypervolume(costs, val), hypervolume(costs[front], test[front]),
                 int(costs[best]), float(test[best]), int(costs[pick]), float(test[pick]), int(front.sum()),
                 run.duration)  # fmt: skip


def table_front(case: Any, epochs: int) -> tuple[float, float]:
    """The hypervolume every config of the table reaches (seed 0, best validation epoch within `epochs`): validation
    and test. An upper bound for the replays (the table's configs, not the whole space)."""
    t = case.table
    costs = np.array([parameters(c) for c in t.configs], np.float64)
    val = np.nanmax(t.val_accuracy[:, 0, :epochs], axis=1)
    epoch = np.nanargmax(np.where(np.isfinite(t.val_accuracy[:, 0, :epochs]), t.val_accuracy[:, 0, :epochs], -1), 1)
    test = t.test_accuracy[np.arange(len(costs)), 0, epoch]
    ok = np.isfinite(val)
    return hypervolume(costs[ok], val[ok]), hypervolume(costs[ok], test[ok])


def summary(rows: list[Front], searchers: list[str], samples: int) -> str:
    lines = [
        f"| searcher | trials | HV val (median [IQR]) | HV test | best: parameters · test | "
        f"smallest within {TOLERANCE}: parameters (median) · test | pick smaller than best | front points | "
        "simulated s |",
        "|---|---:|---|---:|---|---|---:|---:|---:|",
    ]
    for name in searchers:
        mine = [r for r in rows if r.searcher == name and r.samples == samples]
        hv = np.array([r.hv_val for r in mine])
        q1, q3 = np.percentile(hv, [25, 75])
        smaller = sum(r.pick_parameters < r.best_parameters for r in mine)
        lines.append(
            f"| {name} | {samples} | {np.median(hv):.5f} [{q1:.5f}, {q3:.5f}] | "
            f"{statistics.median(r.hv_test for r in mine):.5f} | "
            f"{statistics.median(r.best_parameters for r in mine):,.0f} · "
            f"{statistics.median(r.best_test for r in mine):.4f} | "
            f"{statistics.median(r.pick_parameters for r in mine):,.0f} · "
            f"{statistics.median(r.pick_test for r in mine):.4f} | "
            f"{smaller}/{len(mine)} | {statistics.median(r.front_size for r in mine):.0f} | "
            f"{statistics.median(r.duration for r in mine):.0f} |"
        )
    return "\n".join(lines)


def paired(rows: list[Front], a: str, b: str, samples: int) -> str:
    """How often searcher `a`'s hypervolume beats `b`'s on the same seed, with a bootstrap interval of the mean gap."""
    x = {r.seed: r.hv_val for r in rows if r.searcher == a and r.samples == samples}
    y = {r.seed: r.hv_val for r in rows if r.searcher == b and r.samples == samples}
    seeds = sorted(set(x) & set(y))
    gaps = np.array([x[s] - y[s] for s in seeds])
    rng = np.random.default_rng(0)
    means = gaps[rng.integers(len(gaps), size=(2000, len(gaps)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return (f"{a} − {b} ({samples} trials): HV val gap mean {gaps.mean():+.5f} [95 % CI {low:+.5f}, {high:+.5f}], "
            f"{a} higher on {int((gaps > 0).sum())}/{len(gaps)} seeds, equal on {int((gaps == 0).sum())}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table-file", type=Path, default=TABLES_DIR / "default-150.csv.gz", help="a curve table")
    parser.add_argument("--space", default="default", help="the space the table was made over (default: default)")
    parser.add_argument("--samples", type=int, nargs="+", default=[20], help="trials per search (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="workers (default 2)")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per searcher (default 20)")
    parser.add_argument("--searchers", nargs="+", default=SEARCHERS, help=f"of {' '.join(SEARCHERS)}")
    args = parser.parse_args(argv)
    unknown = [s for s in args.searchers if s not in SEARCHERS]
    if unknown:
        parser.error(f"argument --searchers: {' '.join(unknown)}: give some of {' '.join(SEARCHERS)}")
    from tune_mlp.replay.bench import curve_case

    case = curve_case(str(args.table_file), args.space)
    bound_val, bound_test = table_front(case, case.table.epochs)
    print(f"# {case.name}: {len(case.table.configs)} configs, {case.table.epochs} epochs; reference point "
          f"(accuracy {REF_ACCURACY}, {REF_PARAMETERS:,} parameters); the whole table's front: HV val "
          f"{bound_val:.5f}, test {bound_test:.5f}\n", flush=True)  # fmt: skip
    rows = []
    for samples in args.samples:
        for name in args.searchers:
            for seed in range(args.seeds):
                rows.append(replay(case, name, samples, args.workers, seed))
            print(f"  {name} x {args.seeds} seeds, {samples} trials: done", file=sys.stderr, flush=True)
        print(summary(rows, args.searchers, samples) + "\n")
        for mo in [s for s in args.searchers if s.startswith(("optuna-mo", "nsga2"))]:
            stopping = mo.endswith("-fifo")
            for single in [s for s in args.searchers if "-mo" not in s and "nsga" not in s]:
                if single.endswith("-fifo") == stopping:  # like against like: the same scheduler
                    print(paired(rows, mo, single, samples))
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
