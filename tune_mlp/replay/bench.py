"""The replay benchmark: every searcher over a table at several worker counts and many seeds, summarised.

``scripts/bench_replay.py`` is its command line. A ``Case`` is one table with the space its searchers get;
``replay_case`` runs each (searcher, workers, seed) once; ``summarise`` gives per searcher and worker count
the median final regret with a 95 % bootstrap interval, the mean rank (1 = best; ties share) with the
interval of its difference to the best mean rank (paired over seeds: a difference whose interval holds 0
is a statistical tie), the median regret at a few simulated times and the median time to within 0.002 of
the optimum; ``floor`` is random search's exact expected regret at the same trial count (no stopping).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tune_mlp.replay.floor import random_floor
from tune_mlp.replay.peers import PEERS, Setting
from tune_mlp.replay.simulate import optimum, simulate, time_to_near
from tune_mlp.replay.table import Table

TIME_FRACTIONS = (0.25, 0.5, 1.0)  # anytime regret at these shares of random search's median duration


@dataclass
class Case:
    """One table and how a search over it is set up."""

    name: str
    table: Table
    space: dict[str, Any]  # the Tune space the searchers get
    lengths: tuple[int, ...]  # trial lengths the space allows (the study: 5 or 8 epochs)
    scheduler: str = "asha"  # "fifo" for tables without curves
    mapper: Callable[[dict[str, Any]], int] | None = None  # None: the table holds every config (exact)
    samples: Callable[[int], int] = field(default=lambda workers: max(20, 2 * workers))
    training_seed: int | None = None  # the table seed index every trial trains with, as a real search (None: drawn)
    best: float = field(init=False)

    def __post_init__(self) -> None:
        self.best = optimum(self.table, self.lengths)[0]


@dataclass(frozen=True)
class Outcome:
    searcher: str
    workers: int
    seed: int
    regret: float  # final
    duration: float  # simulated seconds
    trials: int
    stopped: int  # trials the scheduler stopped early
    near: float  # time to within 0.002 of the optimum (inf: never)
    curve: tuple[tuple[float, float], ...]  # (time, regret) whenever the pick changes


def variant(name: str) -> tuple[Callable[[Setting], Any], int | None]:
    """``optuna`` (its own defaults) or ``optuna@6`` (6 random start-up trials, as ours): the factory and count."""
    base, _, startup = name.partition("@")
    return PEERS[base], int(startup) if startup else None


def replay_one(case: Case, searcher: str, workers: int, seed: int) -> Outcome:
    factory, startup = variant(searcher)
    setting = Setting(workers, seed, case.table.epochs, startup, case.scheduler)
    with _quiet():
        algo, scheduler = factory(setting)
        run = simulate(case.table, algo, scheduler, space=case.space, workers=workers,
                       samples=case.samples(workers), seed=seed, mapper=case.mapper,
                       training_seed=case.training_seed)  # fmt: skip
    curve, top = [], -np.inf
    for report in sorted(run.reports, key=lambda r: r.time):
        if np.isfinite(report.val) and report.val > top:
            top = report.val
            curve.append((report.time, case.best - report.test))
    final = run.picked()
    return Outcome(searcher, workers, seed, case.best - final.test if final else np.nan, run.duration,
                   len(run.ended), sum(1 for how, _ in run.ended.values() if how == "STOP"),
                   time_to_near(run, case.best), tuple(curve))  # fmt: skip


@contextlib.contextmanager
def _quiet():
    """hpbandster prints its KDE's state to stdout and the searchers warn per trial: keep the report readable."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        for name in ("hpbandster", "ray.tune", "optuna"):
            logging.getLogger(name).setLevel(logging.ERROR)
        yield


def replay_case(case: Case, searchers: list[str], workers: list[int], seeds: list[int], jobs: int = 1,
                progress: Callable[[str], None] | None = None, store: str | None = None) -> list[Outcome]:  # fmt: skip
    """Every (searcher, workers, seed); ``jobs`` > 1 spreads them over processes (forked: the table is shared).

    ``store``: a JSON-lines file of finished replays. Those already in it are read, not replayed, and each new
    one is appended as it ends, so a run of hours that is stopped goes on where it was when started again.
    """
    tasks = [(s, w, seed) for w in workers for s in searchers for seed in seeds]
    done = {key: o for key, o in _stored(store, case.name).items() if key in set(tasks)}
    todo = [task for task in tasks if task not in done]
    out = dict(done)
    if jobs <= 1:
        results = (replay_one(case, *task) for task in todo)
    else:
        import multiprocessing

        global _CASE
        _CASE = case
        pool = multiprocessing.get_context("fork").Pool(jobs)
        results = pool.imap_unordered(_replay_task, todo, chunksize=4)
    try:
        for i, outcome in enumerate(results):
            out[(outcome.searcher, outcome.workers, outcome.seed)] = outcome
            _store(store, case.name, outcome)
            if progress and (i + 1) % max(1, len(todo) // 10) == 0:
                progress(f"  {case.name}: {len(done) + i + 1}/{len(tasks)} replays")
    finally:
        if jobs > 1:
            pool.terminate()
    return [out[task] for task in tasks]


def _stored(store: str | None, case: str) -> dict[tuple[str, int, int], Outcome]:
    import json
    import os

    if not store or not os.path.isfile(store):
        return {}
    out = {}
    with open(store) as handle:
        for line in handle:
            row = json.loads(line)
            if row.pop("case") == case:
                row["curve"] = tuple(tuple(point) for point in row["curve"])
                outcome = Outcome(**row)
                out[(outcome.searcher, outcome.workers, outcome.seed)] = outcome
    return out


def _store(store: str | None, case: str, outcome: Outcome) -> None:
    import dataclasses
    import json

    if store:
        with open(store, "a") as handle:  # one line a replay, flushed at once: a stopped run loses none
            handle.write(json.dumps({"case": case, **dataclasses.asdict(outcome)}) + "\n")


def _replay_task(task: tuple[str, int, int]) -> Outcome:
    assert _CASE is not None
    return replay_one(_CASE, *task)


_CASE: Case | None = None


def regret_at(outcome: Outcome, t: float) -> float:
    """The pick's regret at simulated time ``t`` (NaN before the first result)."""
    value = np.nan
    for time, regret in outcome.curve:
        if time > t:
            break
        value = regret
    return value


def bootstrap_median(values: np.ndarray, rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    samples = rng.choice(values, size=(draws, len(values)), replace=True)
    low, high = np.nanpercentile(np.nanmedian(samples, axis=1), [2.5, 97.5])
    return float(low), float(high)


def ranks(outcomes: list[Outcome], searchers: list[str], seeds: list[int]) -> np.ndarray:
    """[seed, searcher] rank of final regret among the searchers on that seed (1 = best, ties averaged)."""
    table = {(o.searcher, o.seed): o.regret for o in outcomes}
    out = np.empty((len(seeds), len(searchers)))
    for i, seed in enumerate(seeds):
        row = np.array([table[(s, seed)] for s in searchers])
        row = np.where(np.isfinite(row), row, np.inf)
        for j, value in enumerate(row):
            out[i, j] = 1 + np.sum(row < value) + (np.sum(row == value) - 1) / 2
    return out


@dataclass(frozen=True)
class Summary:
    searcher: str
    workers: int
    median: float
    interval: tuple[float, float]
    mean_rank: float
    rank_gap: tuple[float, float]  # 95 % interval of (this mean rank - the best mean rank), paired over seeds
    anytime: tuple[float, ...]  # median regret at the times of ``times``
    near: float  # median time to within 0.002 (inf: most seeds never)
    trials: float
    stopped: float


def summarise(outcomes: list[Outcome], searchers: list[str], workers: int, seeds: list[int],
              times: tuple[float, ...], seed: int = 0) -> list[Summary]:  # fmt: skip
    mine = [o for o in outcomes if o.workers == workers]
    rank = ranks(mine, searchers, seeds)
    best = int(np.argmin(rank.mean(axis=0)))
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(seeds), size=(2000, len(seeds)))
    out = []
    for j, name in enumerate(searchers):
        rows = [o for o in mine if o.searcher == name]
        regrets = np.array([o.regret for o in rows])
        gaps = (rank[picks, j] - rank[picks, best]).mean(axis=1)
        out.append(Summary(
            name, workers, float(np.nanmedian(regrets)), bootstrap_median(regrets, rng), float(rank[:, j].mean()),
            (float(np.percentile(gaps, 2.5)), float(np.percentile(gaps, 97.5))),
            tuple(float(np.nanmedian([regret_at(o, t) for o in rows])) for t in times),
            float(np.median([o.near for o in rows])), float(np.mean([o.trials for o in rows])),
            float(np.mean([o.stopped for o in rows])),
        ))  # fmt: skip
    return out


def reference_times(outcomes: list[Outcome], workers: int) -> tuple[float, ...]:
    """Shares of random search's median duration at this worker count (the anytime columns)."""
    durations = [o.duration for o in outcomes if o.workers == workers and o.searcher.startswith("random")]
    durations = durations or [o.duration for o in outcomes if o.workers == workers]
    end = float(np.median(durations))
    return tuple(end * f for f in TIME_FRACTIONS)


def floor(case: Case, workers: int) -> float:
    return random_floor(case.table, case.samples(workers), case.best, case.lengths)


def format_case(case: Case, outcomes: list[Outcome], searchers: list[str], workers: list[int],
                seeds: list[int]) -> str:  # fmt: skip
    """The case's table in Markdown: one row per (workers, searcher)."""
    digits = 4 if case.scheduler == "asha" else 5
    f = f"{{:.{digits}f}}"
    lines = [
        f"### {case.name}: {len(case.table.configs)} configs x {len(case.table.seeds)} seeds, optimum "
        f"{case.best:.4f}, {len(seeds)} seeds per cell",
        "",
        "| workers | trials | searcher | median final regret [95 % CI] | mean rank (gap to best [95 % CI]) "
        "| regret at ¼ · ½ · 1 × T | time to ≤0.002 | trials stopped | random floor |",
        "|---:|---:|---|---|---|---|---:|---:|---:|",
    ]
    for w in workers:
        times = reference_times(outcomes, w)
        rows = summarise(outcomes, searchers, w, seeds, times)
        best_rank = min(r.mean_rank for r in rows)
        for r in rows:
            mark = "**" if r.mean_rank == best_rank or r.rank_gap[0] <= 0 <= r.rank_gap[1] else ""
            anytime = " · ".join(f.format(a) for a in r.anytime)
            near = "never" if not np.isfinite(r.near) else f"{r.near:.0f} s"
            lines.append(
                f"| {w} | {case.samples(w)} | {r.searcher} | {f.format(r.median)} [{f.format(r.interval[0])}, "
                f"{f.format(r.interval[1])}] | {mark}{r.mean_rank:.2f}{mark} ({r.rank_gap[0]:+.2f}, "
                f"{r.rank_gap[1]:+.2f}) | {anytime} | {near} | {r.stopped:.1f}/{r.trials:.0f} "
                f"| {f.format(floor(case, w))} |"
            )
        lines.append(f"|  |  | T = {times[-1]:.0f} simulated s |  |  |  |  |  |  |")
    return "\n".join(lines)


def format_per_seed(case: Case, outcomes: list[Outcome]) -> str:
    """Each replay's final pick: to hold beside a real search run with the same ``--seed`` (the searcher's seed)."""
    lines = ["| workers | searcher | seed | test of the pick | regret |", "|---:|---|---:|---:|---:|"]
    for o in sorted(outcomes, key=lambda o: (o.workers, o.searcher, o.seed)):
        lines.append(f"| {o.workers} | {o.searcher} | {o.seed} | {case.best - o.regret:.4f} | {o.regret:+.4f} |")
    return "\n".join(lines)


def plot_case(case: Case, outcomes: list[Outcome], searchers: list[str], workers: list[int], path: str) -> None:
    """Median anytime regret per searcher against simulated time, one panel per worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(workers), figsize=(4 * len(workers), 3.4), squeeze=False)
    for ax, w in zip(axes[0], workers):
        end = reference_times(outcomes, w)[-1] * 1.5
        grid = np.linspace(0, end, 60)[1:]
        for name in searchers:
            rows = [o for o in outcomes if o.workers == w and o.searcher == name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                median = [np.nanmedian([regret_at(o, t) for o in rows]) for t in grid]
            ax.plot(grid, median, label=name, lw=2 if name.startswith("ours") else 1.2)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_title(f"{case.name}, {w} workers")
        ax.set_xlabel("simulated seconds")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("median regret (test)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve_case(path: str, space: str, partial: bool = False, training_seed: int | None = None) -> Case:
    """A table made by ``scripts/make_curve_table.py`` over ``space``, with the space as our search builds it.

    A grid table holding every config maps suggestions exactly; a sampled table (or one still being made)
    through the nearest-config surrogate. ``training_seed``: every trial trains with this seed of the table,
    as a real search does (``TrainConfig.seed``); None draws one per trial.
    """
    from ray.tune.search.sample import Categorical

    from tune_mlp.replay.surrogate import NearestConfig
    from tune_mlp.replay.table import TableError, load_table
    from tune_mlp.search.space import load_sweep
    from tune_mlp.search.tune_space import to_tune_space

    table = load_table(path, partial=partial)
    tune_space = to_tune_space(load_sweep(space).space)
    epochs = tune_space.get("epochs")
    lengths = tuple(sorted(int(e) for e in epochs.categories)) if isinstance(epochs, Categorical) else (table.epochs,)
    grid = [len(v.categories) for k, v in tune_space.items() if isinstance(v, Categorical) and k != "epochs"]
    exact = all(isinstance(tune_space[k], Categorical) or k not in tune_space for k in table.keys) and len(
        table.configs) == int(np.prod(grid))  # fmt: skip
    seed_index = None
    if training_seed is not None:
        if training_seed not in table.seeds:
            raise TableError(f"{path}: has no training seed {training_seed}; pick one of {list(table.seeds)}")
        seed_index = table.seeds.index(training_seed)
    return Case(table.name, table, tune_space, lengths, mapper=None if exact else NearestConfig(table),
                training_seed=seed_index)  # fmt: skip


def external_case(bench: str, dataset: str) -> Case:
    from tune_mlp.replay.external import external_space, external_table

    table = external_table(bench, dataset)
    return Case(table.name, table, external_space(bench), (1,), scheduler="fifo",
                samples=lambda workers: max(60, 4 * workers))  # fmt: skip
