"""What ensemble selection adds to finished searches: test accuracy of the single best and of the ensemble, the gain.

    python scripts/bench_ensemble.py ray_results/NAME [ray_results/OTHER ...] [--data-dir DIR]

For each experiment folder (e.g. the three seeds of ``scripts/bench_budget.py --budgets 10m``) the ensemble is chosen
on the search's own validation split (``tune_mlp.deploy.members``, docs/ensemble.md) and both models are scored once
on the test set, as ``python -m analysis`` reports them; then the medians over the experiments. Prints the
parameters and TensorFlow Lite latency per image (batch 1) beside each. Trains nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+", help="finished search folders")
    parser.add_argument("--data-dir", default=None, help="folder with the IDX files")
    args = parser.parse_args()

    from analysis.ensemble_report import compare

    header = (f"{'experiment':<40} {'cand':>4} {'picks':>5} {'members':>7} {'single':>7} {'ensemble':>8} {'gain':>7} "
              f"{'params single/ens':>19} {'µs/img b1 single/ens':>21}")  # fmt: skip
    print(header)
    singles, ensembles = [], []
    for experiment in args.experiments:
        result = compare(experiment, args.data_dir)
        name = Path(experiment).name
        if "skipped" in result:
            print(f"{name:<40} no ensemble: {result['skipped']}")
            continue
        single, ensemble = result["models"]["single best"], result["models"]["ensemble"]
        singles.append(single["test_accuracy"])
        ensembles.append(ensemble["test_accuracy"])
        print(
            f"{name:<40} {result['members_considered']:>4} {result['size']:>5} {ensemble['members']:>7} "
            f"{single['test_accuracy']:>7.4f} {ensemble['test_accuracy']:>8.4f} "
            f"{ensemble['test_accuracy'] - single['test_accuracy']:>+7.4f} "
            f"{single['parameters']:>9,}/{ensemble['parameters']:<9,} "
            f"{single['latency_us_batch_1']:>9.1f}/{ensemble['latency_us_batch_1']:<9.1f}",
            flush=True,
        )
    if singles:
        single, ensemble = statistics.median(singles), statistics.median(ensembles)
        print(f"median test accuracy over {len(singles)}: single best {single:.4f}, ensemble {ensemble:.4f}, "
              f"gain {ensemble - single:+.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
