"""Budget accounting on hand-made epoch reports: the numbers follow from the clocks."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.accounting import budget_accounting, busiest_overlap, trial_intervals, utilisation


def epochs(trial: str, part: str, start: float, seconds: list[float], training: float = 0.8) -> list[dict]:
    """One row per epoch of a trial that started at ``start`` and took ``seconds`` per epoch."""
    rows, total = [], 0.0
    for epoch, took in enumerate(seconds, start=1):
        total += took
        rows.append({"trial_id": trial, "part": part, "epoch": epoch, "timestamp": start + total,
                     "time_total_s": total, "time_this_iter_s": took, "epoch_seconds": took * training})  # fmt: skip
    return rows


@pytest.fixture
def search() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Part ".": a and b side by side over [0, 30]; part-2 runs c alone an hour later for 10 s.
    rows = epochs("a", ".", 0, [10, 10, 10]) + epochs("b", ".", 0, [10]) + epochs("b2", ".", 10, [10, 10])
    rows += epochs("c", "part-2", 3600, [5, 5])
    trials = pd.DataFrame({"trial_id": ["a", "b", "b2", "c"],
                           "status": ["completed", "stopped early", "stopped by budget", "completed"]})  # fmt: skip
    return trials, pd.DataFrame(rows)


def test_utilisation_counts_each_part_with_its_own_slots(search) -> None:
    _, rows = search
    assert busiest_overlap(trial_intervals(rows[rows["part"] == "."])) == 2
    used = utilisation(rows, {".": 2, "part-2": 1})
    # Wall: 30 s in part "." (2 slots) + 10 s in part-2 (1 slot); the hour between them is not counted.
    assert used["wall_seconds"] == pytest.approx(40)
    assert used["trial_seconds"] == pytest.approx(70)
    assert used["trial_efficiency"] == pytest.approx(70 / (30 * 2 + 10 * 1))
    assert used["training_efficiency"] == pytest.approx(0.8 * 70 / 70)
    assert utilisation(rows)["trial_efficiency"] == pytest.approx(used["trial_efficiency"])  # overlap finds the slots


def test_budget_accounting_separates_asha_stops_from_budget_cuts(search) -> None:
    trials, rows = search
    parts = [{"folder": ".", "slots": 2}, {"folder": "part-2", "slots": 1, "ended_by": "time budget",
                                            "time_budget_s": 600}]  # fmt: skip
    budget = budget_accounting(trials, rows, parts)
    assert budget["trials_run"] == 4 and budget["epochs_spent"] == 8
    assert budget["asha_stopped_trials"] == 1 and budget["asha_stopped_seconds"] == pytest.approx(10)
    assert budget["asha_stopped_share"] == pytest.approx(10 / 70)
    assert budget["budget_stopped_trials"] == 1
    assert (budget["ended_by"], budget["time_budget_s"], budget["parts"]) == ("time budget", 600, 2)
