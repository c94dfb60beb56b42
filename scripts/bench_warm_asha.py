"""python scripts/bench_warm_asha.py [TABLE] [SEEDS]

What telling an extension's ASHA the earlier trials (``tune_mlp.search.searchers.WarmASHA``) buys, in the replay
(no training): part 1 runs 20 trials (TPE + ASHA, 4 workers), part 2 20 more with TPE warm-started from part 1's
results, its ASHA told part 1's learning curves or not. Prints part 2's epochs, the trials ASHA stopped and the test
accuracy picked over both parts, averaged over SEEDS (default 20). TABLE: study (default) or default-150.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from ray.tune.search import ConcurrencyLimiter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tune_mlp.replay.bench import _quiet, curve_case  # noqa: E402
from tune_mlp.replay.simulate import METRIC, MODE, Replayer  # noqa: E402
from tune_mlp.replay.table import TABLES_DIR  # noqa: E402
from tune_mlp.search.searchers import TPE, WarmASHA  # noqa: E402

WORKERS, TRIALS, STARTUP = 4, 20, 6


def replay(case, searcher, scheduler, seed: int) -> Replayer:  # noqa: ANN001
    searcher.set_search_properties(METRIC, MODE, case.space)
    scheduler.set_search_properties(METRIC, MODE)
    replayer = Replayer(case.table, searcher, scheduler, WORKERS, TRIALS, seed, case.mapper, training_seed=0)
    replayer.outcome = replayer.run()
    return replayer


def main(table: str = "study", seeds: int = 20) -> None:
    case = curve_case(str(TABLES_DIR / f"{table}.csv.gz"), table.split("-")[0], training_seed=0)
    asha = dict(max_t=case.table.epochs, grace_period=min(3, case.table.epochs), reduction_factor=3)
    rows: dict[str, list[tuple[float, ...]]] = {"told": [], "not told": []}
    for seed in range(seeds):
        with _quiet():
            first = replay(case, ConcurrencyLimiter(TPE(STARTUP, seed), WORKERS), WarmASHA({}, **asha), seed)
        histories: dict[str, dict[int, float]] = {}
        for report in sorted(first.outcome.reports, key=lambda r: r.time):
            histories.setdefault(report.trial_id, {})[report.epoch] = report.val
        configs = {trial.trial_id: trial.config for trial in first.trials}
        evaluated = [{"trial_id": t, "config": configs[t], "reward": h[max(h)]} for t, h in histories.items()]
        for name, earlier in (("told", histories), ("not told", {})):
            tpe = TPE(STARTUP, 100 + seed, evaluated=evaluated)
            with _quiet():
                second = replay(case, ConcurrencyLimiter(tpe, WORKERS), WarmASHA(earlier, **asha), 100 + seed).outcome
            best = max([*first.outcome.reports, *second.reports], key=lambda r: (r.val, -r.time))
            stopped = sum(1 for how, _ in second.ended.values() if how == "STOP")
            rows[name].append((len(second.reports), stopped, best.test))
    for name, values in rows.items():
        a = np.array(values)
        print(f"{table}, ASHA {name}: part 2 trained {a[:, 0].mean():.1f} epochs (sd {a[:, 0].std():.1f}), "
              f"stopped {a[:, 1].mean():.1f}/{TRIALS}, test picked {a[:, 2].mean():.4f} ({seeds} seeds)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", nargs="?", default="study", choices=["study", "default-150"])
    parser.add_argument("seeds", nargs="?", type=int, default=20)
    args = parser.parse_args()
    main(args.table, args.seeds)
