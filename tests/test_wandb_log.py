"""tune_mlp.search.wandb_log: a result cleaned for W&B, and the hub's runs read back from wandb's own files.

The hub inside a real search (one run per trial, the numbers of result.json, no key in any file) is tested on the
stand-in searches of test_standin.py and test_exposure.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wandb_runs import read_run

from tune_mlp.search.wandb_log import AUTO_CONFIG_KEYS, WandbHub, WandbLoggerCallback, loggable, plain, run_config


def test_a_result_becomes_a_row_of_numbers_and_a_config_update() -> None:
    result = {
        "val_accuracy": np.float32(0.75),  # numpy scalars and one-element arrays: their Python numbers
        "epoch": np.int64(3),
        "training_iteration": 3,
        "lr_now": np.array([0.01]),
        "nested": {"a": 1.5, "b": {"c": 2}},  # flattened as Ray's callback does
        "stopped": False,
        "checkpoint_dir_name": "checkpoint_000002",  # a string outside the config: not in the history
        "weights": np.zeros(3),  # not a number
        "done": False,  # Tune's flags: never logged
        "should_checkpoint": True,
        "node_id": "abc",  # excluded by the caller
        "trial_id": "t1",  # Tune's bookkeeping: to the config
        "date": "2026-12-06_07-00-00",
        "pid": 1234,
        "config": {"learning_rate": 0.01, "hidden": [64, np.int64(32)], "callbacks": object(), "node_id": "x"},
    }  # fmt: skip
    row, config = loggable(result, excludes=["node_id"])
    assert row == {"val_accuracy": pytest.approx(0.75), "epoch": 3, "training_iteration": 3, "lr_now": 0.01,
                   "nested/a": 1.5, "nested/b/c": 2, "stopped": False}  # fmt: skip
    assert type(row["val_accuracy"]) is float and type(row["epoch"]) is int
    assert config == {"learning_rate": 0.01, "hidden": [64, 32], "trial_id": "t1", "date": "2026-12-06_07-00-00",
                      "pid": 1234}  # fmt: skip
    assert set(AUTO_CONFIG_KEYS) >= {"trial_id", "date", "pid", "hostname", "node_ip"}
    assert run_config(result["config"], ["node_id"]) == {"learning_rate": 0.01, "hidden": [64, 32]}


def test_plain_keeps_what_wandb_stores_and_writes_the_rest_as_text() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    value = {"a": (1, np.float64(2.5)), 3: {"b": None, "c": Odd()}, "d": {np.int32(1)}, "e": complex(1, 2)}
    assert plain(value) == {"a": [1, 2.5], "3": {"b": None, "c": "odd"}, "d": [1], "e": "(1+2j)"}


def test_the_callback_pickles_without_its_hub_and_a_restored_one_starts_afresh() -> None:
    """Tune pickles the run config (its callbacks) with the experiment, and a restored search unpickles it."""
    import pickle

    callback = WandbLoggerCallback(project="p", group="g", excludes=["node_id"], upload_timeout=5, entity="team")
    callback._hub, callback._started = object(), {"t1"}  # as during a search: a live actor handle is not pickled
    restored = pickle.loads(pickle.dumps(callback))
    assert (restored.project, restored.group, restored.excludes) == ("p", "g", ["node_id"])
    assert (restored.upload_timeout, restored.init_kwargs) == (5, {"entity": "team"})
    assert restored._hub is None and restored._started == set() and restored._pending == []


@pytest.mark.subprocess  # wandb's service process
def test_the_hub_writes_one_offline_run_per_trial_with_its_numbers_and_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the mode comes from the driver, as an argument
    hub = WandbHub(mode="offline")
    init = {"project": "proj", "group": "grp", "resume": False, "allow_val_change": True}
    for trial_id in ("t1", "t2"):
        config = run_config({"learning_rate": 0.01 if trial_id == "t1" else 0.1})
        hub.start(trial_id, str(tmp_path / trial_id), {**init, "id": trial_id, "name": f"train_{trial_id}",
                                                      "config": config})  # fmt: skip
    hub.start("t1", str(tmp_path / "t1"), {**init, "id": "t1"})  # a second start of an open run: the same run
    for step in (1, 2):
        row, config = loggable({"training_iteration": step, "val_accuracy": 0.5 + step / 10, "hostname": "h",
                                "config": {"learning_rate": 0.01}})  # fmt: skip
        hub.log("t1", row, config)
    hub.log("t2", {"training_iteration": 1, "val_accuracy": 0.3}, {})
    hub.finish("t1")
    hub.log("t1", {"training_iteration": 3, "val_accuracy": 0.9}, {})  # after its end: nothing
    assert hub.close() == 1  # t2 was still open

    (one,) = (tmp_path / "t1" / "wandb").glob("offline-run-*")
    (two,) = (tmp_path / "t2" / "wandb").glob("offline-run-*")
    first, second = read_run(one), read_run(two)
    assert (first.id, first.name, first.project, first.group) == ("t1", "train_t1", "proj", "grp")
    logged = [(row["training_iteration"], row["val_accuracy"], row["_step"]) for row in first.history]
    assert logged == [(1, 0.6, 1), (2, 0.7, 2)]
    assert first.config["learning_rate"] == 0.01 and first.config["hostname"] == "h"
    assert first.config["trial_log_path"] == str(tmp_path / "t1")
    assert [r["val_accuracy"] for r in second.history] == [0.3] and second.config["learning_rate"] == 0.1
