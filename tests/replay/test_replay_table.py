"""The table loader reads a made table and refuses a damaged one in one line naming the file and the fix."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from test_replay_simulate import CURVES, write_table

from tune_mlp.errors import UserInputError
from tune_mlp.replay.surrogate import NearestConfig, holdout_error
from tune_mlp.replay.table import load_table


def test_reads_the_arrays(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path / "t.csv.gz", seeds=(0, 1)))
    assert table.keys == ("hidden_size", "optimizer")
    assert table.configs[1] == {"hidden_size": 64, "optimizer": "adam"}
    assert table.seeds == (0, 1) and table.val_accuracy.shape == (4, 2, 4)
    assert table.val_accuracy[1, 0].tolist() == CURVES[1][2]
    assert table.test_accuracy[3, 1, 0] == pytest.approx(0.75 + 0.005 + 0.001)
    assert table.seconds[2, 0].tolist() == [1.5] * 4


def _rewrite(path: Path, edit) -> Path:
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(edit(lines)) + "\n")
    return path


@pytest.mark.parametrize(
    "damage, says",
    [
        ("truncated", "truncated or damaged"),
        ("column", "missing column val_accuracy"),
        ("cell", "line 3: val_accuracy is 'oops', not a number"),
        ("epoch", "config 2 seed 0 has epochs [1, 2, 4], not 1..4"),
        ("seed", "config 0 lacks seeds [1]"),
    ],
)
def test_refuses_a_damaged_table(tmp_path: Path, damage: str, says: str) -> None:
    path = write_table(tmp_path / "t.csv.gz", seeds=(0, 1))
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "column":
        _rewrite(path, lambda lines: [ln.replace("val_accuracy", "val_acc") for ln in lines])
    elif damage == "cell":
        _rewrite(path, lambda lines: [lines[0], lines[1], _cell(lines[0], lines[2], "val_accuracy", "oops"),
                                      *lines[3:]])  # fmt: skip
    elif damage == "epoch":
        _rewrite(path, lambda lines: [ln for ln in lines if not ln.startswith("128,sgd,2,0,3,")])
    elif damage == "seed":
        _rewrite(path, lambda lines: [ln for ln in lines if not ln.startswith("64,sgd,0,1,")])
    with pytest.raises(UserInputError) as caught:
        load_table(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and says in message
    assert "make_curve_table.py" in message


def _cell(header: str, line: str, column: str, value: str) -> str:
    cells = line.split(",")
    cells[header.split(",").index(column)] = value
    return ",".join(cells)


def test_partial_table_keeps_the_finished_seeds(tmp_path: Path) -> None:
    path = _rewrite(write_table(tmp_path / "t.csv.gz", seeds=(0, 1)),
                    lambda lines: [ln for ln in lines if not ln.startswith("64,sgd,0,1,")])  # fmt: skip
    table = load_table(path, partial=True)
    assert table.seeds == (0,) and len(table.configs) == 4


def test_surrogate_maps_to_the_nearest_config(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path / "t.csv.gz"))
    near = NearestConfig(table)
    assert near({"hidden_size": 64, "optimizer": "adam"}) == 1  # exact
    assert near({"hidden_size": 100, "optimizer": "adam"}) == 3  # 100 is nearer 128 than 64
    error = holdout_error(table, k=1)
    # each config predicted by its first nearest other (ties: the first): 0<-1, 1<-0, 2<-0, 3<-1
    truth = np.array([0.69, 0.87, 0.51, 0.875])
    assert error.mae == pytest.approx(np.mean(np.abs(truth[[1, 0, 0, 1]] - truth)))
    assert "held-out" in error.line()
