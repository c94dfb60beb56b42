"""Ray Tune's scalability release tests, scaled to this machine: our search stack beside bare Ray Tune, same run.

    python scripts/bench_scale.py                         # every case, full size (~1 h on 2 cores)
    python scripts/bench_scale.py --cases slots32,slots32_wandb
    python scripts/bench_scale.py --quick                 # every case scaled down (~15 min on 2 cores)
    python scripts/bench_scale.py --cases slots32 --variants bare,ours,ours_killstart,ours_noreuse

Trials are the stand-in (``tune_mlp.search.trainable``'s stand-in: each epoch sleeps, then reports a curve and a small
checkpoint in our format), so only the machinery is timed, as Ray's ``release/tune_tests/scalability_tests`` do
with ``ray.tune.utils.release_test_util``; ``ray.init(num_cpus=N)`` makes N logical slots on any machine.
Each (case, variant) runs in a fresh Python process with its own Ray. Variants:

- ``bare``: bare Ray Tune as a user writes it (Ray's defaults: ``reuse_actors=False``, Ray's
  ``WandbLoggerCallback``), with the case's searcher, scheduler and ``CheckpointConfig(num_to_keep=3)``;
- ``ours``: ``tune_mlp.search.tuner.run_search`` with ``stand_in`` (the whole stack: plan, TPE, ASHA,
  retention, W&B, records), as it is now;
- the state before each fix, for before/after in the same run, each patched from this file:
  ``ours_killstart`` (Tune's own worker reuse: ``tune_mlp.search.compat.keep_starting_workers`` off),
  ``ours_raywandb`` (Ray's per-trial W&B actors), ``ours_tbx`` (Tune's TensorBoard logger, on by default in Tune;
  ours writes it only with ``--tensorboard``), ``ours_before`` (both), ``ours_noreuse`` (``reuse_actors=False``).

Columns: wall (driver start to the last trial's end, Ray's start included), Ray's bound where the issue gives
one, the floor (slept seconds / slots), wall / floor, the driver's RSS growth per finished trial, and the
peak counts of Ray worker and wandb processes under the driver (plus the process tree's peak RSS).
Run on a quiet machine; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tune_mlp.search.plan import PLAN_DEFAULTS  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Case:
    name: str
    slots: int  # ray.init(num_cpus=slots), one CPU a trial
    trials: int
    epoch_s: float  # seconds a stand-in epoch sleeps
    max_epochs: int  # ASHA's max_t (epochs of a trial that is never stopped)
    grace: int  # ASHA's grace period; = max_epochs: nothing is stopped
    searcher: str  # bayes (TPE) | random
    wandb: bool
    bound_x: float | None  # Ray's bound as a multiple of the floor, where the issue names one
    note: str


# The search's own ASHA grace period (3) in the cases that run our search's shape (TPE, ASHA max_t 9): the issue
# measured its 200-trial, 32-slot case that way (floor ~35 s: ~5.6 slept epochs a trial; grace 1 gives ~2.6).
# Runs 1-11 (docs/benchmarks.md, before 2026-12-02 12:00) used grace 1, so their floors were ~16 s.
GRACE = PLAN_DEFAULTS["grace_period"]

CASES = {  # fmt: skip
    "bookkeeping": Case(
        "bookkeeping",
        16,
        1000,
        1.0,
        1,
        1,
        "random",
        False,
        80 / 62.5,
        "1,000 one-second trials, 16 slots (Ray: 10,000 on 16 CPUs within 800 s)",
    ),
    "throughput": Case(
        "throughput", 64, 64, 0.5, 60, 60, "random", True, 1.3, "64 trials x 30 s at 2 results/s, 64 slots, W&B offline"
    ),
    "shape64": Case(
        "shape64",
        64,
        400,
        1.0,
        9,
        GRACE,
        "bayes",
        True,
        1.2,
        "our shape: 400 trials, 1-s epochs, TPE, ASHA max_t 9, ckpt/epoch, 64 slots, W&B offline",
    ),
    "slots32": Case(
        "slots32",
        32,
        200,
        1.0,
        9,
        GRACE,
        "bayes",
        False,
        3.5,
        "2 cores: 200 trials, 1-s epochs, TPE, ASHA max_t 9, 32 slots, W&B off",
    ),
    "tiny": Case("tiny", 4, 12, 0.2, 3, 1, "bayes", True, None, "a check that the script runs"),
    "slots32_wandb": Case(
        "slots32_wandb", 32, 200, 1.0, 9, GRACE, "bayes", True, 5.0, "2 cores: as slots32, W&B offline"
    ),
}
# --quick: these cases run this many trials (throughput: also this many slots)
QUICK = {"bookkeeping": 200, "throughput": 16, "shape64": 100, "slots32": 64, "slots32_wandb": 64, "tiny": 12}


# ---------------------------------------------------------------- measuring (in the child process)


def _tree(root: int) -> list[tuple[int, str, int]]:
    """(pid, cmdline, rss bytes) of ``root``'s descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        info[int(entry)] = (cmd, rss)
    out, stack = [], list(children.get(root, []))
    while stack:
        pid = stack.pop()
        if pid in info:
            out.append((pid, *info[pid]))
        stack.extend(children.get(pid, []))
    return out


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


class Sampler(threading.Thread):
    """Peak Ray workers, wandb processes and tree RSS under this driver, every half second; and how many trial
    workers (``ray::ImplicitFunc``, the function trainable's actor) were started in all, used or not."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"ray_workers": 0, "wandb": 0, "tree_gb": 0.0}
        self.trial_workers: set[int] = set()
        self.running = True

    def run(self) -> None:
        while self.running:
            tree = _tree(os.getpid())
            workers = sum(1 for _, cmd, _ in tree if "ray::" in cmd or "default_worker.py" in cmd)
            wandb = sum(1 for _, cmd, _ in tree if "wandb" in cmd.lower() and "ray::" not in cmd)
            gb = (sum(rss for *_, rss in tree) + rss_bytes()) / 2**30
            self.trial_workers.update(pid for pid, cmd, _ in tree if cmd.startswith("ray::ImplicitFunc"))
            for key, value in (("ray_workers", workers), ("wandb", wandb), ("tree_gb", gb)):
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.5)


def space_file(case: Case, folder: Path) -> Path:
    """The default space, with the case's method; its hyperband block is ours to set by flags."""
    import yaml

    sweep = yaml.safe_load((REPO / "search_spaces/default.yaml").read_text())
    sweep["method"] = case.searcher
    sweep.pop("early_terminate", None)
    sweep.pop("run_cap", None)
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def run_bare(case: Case, space: Path, storage: Path) -> Any:
    """Bare Ray Tune with the stand-in: what a user writes with Ray's defaults."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    from tune_mlp.search.plan import SearchOptions, search_plan
    from tune_mlp.search.trainable import train_standin

    plan = search_plan(SearchOptions(space=str(space), samples=case.trials, max_epochs=case.max_epochs))
    searcher = None
    if case.searcher == "bayes":
        searcher = ConcurrencyLimiter(HyperOptSearch(n_initial_points=6, random_state_seed=0), case.slots)
    callbacks = []
    if case.wandb:
        from ray.air.integrations.wandb import WandbLoggerCallback

        callbacks = [WandbLoggerCallback(project="bench_scale", group=f"bare-{case.name}")]
    grace = case.grace if case.grace < case.max_epochs else case.max_epochs
    tuner = tune.Tuner(
        tune.with_parameters(train_standin, seconds_per_epoch=case.epoch_s, max_epochs=case.max_epochs),
        param_space=plan.tune_space(),
        tune_config=tune.TuneConfig(
            metric="val_accuracy", mode="max", search_alg=searcher, num_samples=case.trials,
            scheduler=ASHAScheduler(time_attr="epoch", max_t=case.max_epochs, grace_period=grace, reduction_factor=3),
            max_concurrent_trials=None if searcher else case.slots,
        ),
        run_config=tune.RunConfig(
            name="bare", storage_path=str(storage), callbacks=callbacks, verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=3, checkpoint_score_attribute="val_accuracy",
                                                    checkpoint_score_order="max"),
        ),
    )  # fmt: skip
    return tuner.fit()


def patch_before(variant: str) -> None:
    """Put back what a fix replaced, for the before/after of one run."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    from tune_mlp.search import tuner

    parts = variant.split("_")[1:]
    if "before" in parts or "raywandb" in parts:
        tuner.WandbLoggerCallback = WandbLoggerCallback  # Ray's own, patched from here
    if "killstart" in parts:  # Tune's own reuse: a finished trial's worker replaces one that is starting
        tuner.keep_starting_workers = lambda: None
    if "noreuse" in parts:  # a fresh worker per trial (Ray's default)
        from ray import tune

        tune_config = tune.TuneConfig
        tune.TuneConfig = lambda **kwargs: tune_config(**(kwargs | {"reuse_actors": False}))


def run_ours(case: Case, space: Path, storage: Path, variant: str) -> Any:
    from tune_mlp.search.tuner import SearchOptions, run_search

    patch_before(variant)
    parts = variant.split("_")[1:]
    options = SearchOptions(
        space=str(space), samples=case.trials, max_epochs=case.max_epochs, grace_period=case.grace,
        concurrency=case.slots, stand_in=case.epoch_s, storage_path=str(storage), name="ours",
        no_wandb=not case.wandb, wandb_project="bench_scale", tensorboard="tbx" in parts or "before" in parts,
    )  # fmt: skip
    return run_search(options)


def child(case: Case, variant: str, out: Path) -> None:
    import logging

    import ray

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["WANDB_SILENT"] = "true"
    started = time.time()
    sampler = Sampler()
    sampler.start()
    ray.init(num_cpus=case.slots, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
             runtime_env={"env_vars": {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}})  # fmt: skip
    rss0 = rss_bytes()
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as folder:
        space = space_file(case, Path(folder))
        run = run_bare if variant == "bare" else lambda *a: run_ours(*a, variant)
        grid = run(case, space, Path(folder) / "results")
        wall = time.time() - started
        trials = sum(1 for result in grid if result.metrics)
        epochs = sum(int(result.metrics.get("epoch", 0)) for result in grid if result.metrics)
        growth = (rss_bytes() - rss0) / max(trials, 1)
        sampler.running = False
        ray.shutdown()
    out.write_text(
        json.dumps(
            {
                "wall": wall,
                "trials": trials,
                "epochs": epochs,
                "kb_per_trial": growth / 1024,
                **sampler.peak,
                "workers_started": len(sampler.trial_workers),
            }
        )  # fmt: skip
    )


# ---------------------------------------------------------------- the table (in the parent)


def floor_s(case: Case, epochs: int) -> float:
    """The theoretical minimum: the epochs the trials slept (ASHA stops most before max_t), spread over the slots."""
    return epochs * case.epoch_s / case.slots


def run_child(case: Case, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """One (case, variant) in a fresh process with its own Ray; its stderr goes to /tmp/bench_scale-CASE-VARIANT.log."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--cases", case.name, "--one", case.name, variant, out.name]
        command += ["--quick"] if args.quick else []
        log = Path(tempfile.gettempdir()) / f"bench_scale-{case.name}-{variant}.log"
        began = time.time()
        with open(log, "w") as stderr:
            proc = subprocess.Popen(command, stdout=stderr, stderr=stderr, start_new_session=True)
            try:
                proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)  # the child and the Ray it started
                proc.wait()
                return {"wall": time.time() - began, "failed": "timeout"}
        text = Path(out.name).read_text()
        return json.loads(text) if proc.returncode == 0 and text else {"wall": time.time() - began, "failed": "error"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        default=",".join(name for name in CASES if name != "tiny"),  # tiny: a self-check
        help=f"comma-separated, of: {', '.join(CASES)} (default: all but tiny)",
    )
    parser.add_argument(
        "--variants",
        default="bare,ours",
        help="comma-separated: bare (Ray's defaults), ours, ours_<piece> (one old piece put back)",
    )
    parser.add_argument("--quick", action="store_true", help="scale the big cases down (see QUICK)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is stopped and marked >")
    parser.add_argument("--one", nargs=3, metavar=("CASE", "VARIANT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = {name: CASES[name] for name in args.cases.split(",")}
    if args.quick:
        from dataclasses import replace

        for name, trials in QUICK.items():
            if name in cases:
                slots = min(cases[name].slots, trials) if name == "throughput" else cases[name].slots
                cases[name] = replace(cases[name], trials=trials, slots=slots)
    if args.one:
        name, variant, out = args.one
        child(cases[name], variant, Path(out))
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; load before: {os.getloadavg()}", flush=True)
    header = (
        "| case | variant | trials | wall | Ray's bound | floor | wall / floor | driver KB / trial "
        "| peak Ray workers | trial workers started | peak wandb procs | peak tree GB | load (1 min) |"
    )
    rows = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for case in cases.values():
        floor = None
        for variant in args.variants.split(","):
            result = run_child(case, variant, args)
            load = f"{os.getloadavg()[0]:.1f}"
            if "failed" in result:
                ratio = f"> {result['wall'] / floor:.1f}" if floor else "—"
                rows.append(
                    f"| {case.name} | {variant} | — | > {result['wall']:.0f} s ({result['failed']}) | — | — "
                    f"| {ratio} | — | — | — | — | — | {load} |"
                )
            else:
                floor = floor_s(case, result["epochs"])
                bound = f"{case.bound_x * floor:.0f} s" if case.bound_x else "—"
                rows.append(
                    f"| {case.name} | {variant} | {result['trials']} | {result['wall']:.0f} s | {bound} "
                    f"| {floor:.0f} s | {result['wall'] / floor:.2f} | {result['kb_per_trial']:.0f} "
                    f"| {result['ray_workers']} | {result['workers_started']} | {result['wandb']} "
                    f"| {result['tree_gb']:.1f} | {load} |"
                )
            print(rows[-1], flush=True)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
