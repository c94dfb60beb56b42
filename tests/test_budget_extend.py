"""A time budget and extending a finished search, through the CLI users run, on real Ray and HyperOpt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAIR_SHARE, FASHION_DIR, REPO, TINY_SPACE, search_cli, state_saved, write_space

from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.records import SearchRecord
from tune_mlp.search.plan import (
    BUDGET_MAX_EPOCHS,
    PLAN_DEFAULTS,
    UNTIL_BUDGET,
    BudgetError,
    SearchOptions,
    TrialBudget,
    describe_plan,
    fit_max_epochs,
    format_duration,
    parse_duration,
    search_plan,
    typical_config,
)
from tune_mlp.search.results import load_experiment
from tune_mlp.search.searchers import TPE

# Tune's TimeoutStopper counts what is left of the budget from its first step after restoring the experiment:
# the restore itself (reading the state, recreating the trials) and the last save and clean-up come on top.
TUNE_RESTORE_S = 30
# The budget and extension tests time and count the machinery, not the training: their trials are the stand-in
# (the stand-in, tune_mlp.search.trainable: each epoch sleeps a second, no TensorFlow), so they cost make test no CPU.
STAND_IN = ("--stand-in", "1")
needs_data = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("45", 45)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_max_epochs_fit_the_budget() -> None:
    # A typical trial of 5 s per epoch: half of 5 minutes (less the start) holds 29 epochs, of 2 minutes 11.
    assert fit_max_epochs(300, 5.0, 30, 3) == 29
    assert fit_max_epochs(120, 5.0, 30, 3) == 11
    assert fit_max_epochs(600, 5.0, 30, 3) == 30  # never above --max-epochs
    assert fit_max_epochs(10, 5.0, 30, 3) == 4  # never below one ASHA rung
    assert typical_config({"hidden_size": {"values": [256, 512, 768]}, "num_layers": {"value": 2}}) == {
        "hidden_size": 512,
        "num_layers": 2,
    }


def test_under_a_budget_a_slow_config_gets_fewer_epochs_so_its_trial_costs_no_more() -> None:
    from tune_mlp.search.plan import epoch_seconds
    from tune_mlp.search.trainable import trial_config

    sizing = TrialBudget(seconds=300, n_train=54000, n_val=6000, cores=1, grace_period=3)
    small, large = {"num_layers": 2, "hidden_size": 256}, {"num_layers": 4, "hidden_size": 768}
    assert sizing.epochs_for(small, 27) == 27  # ~1.4 s an epoch: the cap is max_t
    slow = sizing.epochs_for(large, 27)  # ~10 s an epoch: what half of 5 minutes holds
    assert slow == int((150 - 5) // epoch_seconds(large, 54000, 6000, 1)) and 4 <= slow < 27
    assert trial_config(large, 27, sizing).epochs == slow
    assert trial_config(large, 27).epochs == 27  # no budget: every trial gets max_t
    assert trial_config({**small, "epochs": 5}, 27, sizing).epochs == 5  # a sampled epochs stays the lower cap


def test_a_budget_without_max_epochs_lets_the_fit_decide_up_to_the_ceiling() -> None:
    assert search_plan(SearchOptions()).max_epochs == PLAN_DEFAULTS["max_epochs"] == 30
    assert search_plan(SearchOptions(time_budget="10m")).max_epochs == BUDGET_MAX_EPOCHS == 100
    assert search_plan(SearchOptions(time_budget="10m", max_epochs=40)).max_epochs == 40  # a flag given wins


def test_the_search_line_counts_the_trials_asked_over_all_parts() -> None:
    first = {"folder": ".", "samples": UNTIL_BUDGET, "trials": 12, "until_budget": True}
    until = ", trials until the time budget ended"
    assert SearchRecord(samples=UNTIL_BUDGET, parts=[first]).describe().endswith(until)
    extended = SearchRecord(samples=UNTIL_BUDGET, parts=[first, {"folder": "part-2", "samples": 28}])
    assert extended.describe().endswith(", 40 trials")  # 12 that ran, then --samples 40 asked for 28 more
    counted = {"folder": ".", "samples": 20, "trials": 20}
    assert SearchRecord(samples=20, parts=[counted]).describe().endswith(", 20 trials")
    again = SearchRecord(samples=20, parts=[counted, {"folder": "part-2", "samples": 1000, "until_budget": True}])
    assert again.describe().endswith(until)  # an extension given only a budget


def test_a_budget_without_a_sample_count_runs_trials_until_it_ends(tmp_path) -> None:
    plan = search_plan(SearchOptions(time_budget="10m"))
    assert plan.until_budget and plan.samples == plan.trials == UNTIL_BUDGET == -1  # Tune's num_samples=-1
    line = "samples: until the time budget ends (--samples N caps them)"
    assert line in describe_plan(plan)
    counted = search_plan(SearchOptions(time_budget="10m", samples=20))  # a count given is kept
    assert not counted.until_budget and counted.samples == 20 and "samples: 20" in describe_plan(counted)
    assert search_plan(SearchOptions()).samples == PLAN_DEFAULTS["samples"] == 20  # no budget: the count as before
    capped = tmp_path / "capped.yaml"
    write_space(capped, TINY_SPACE + "run_cap: 7\n")
    assert search_plan(SearchOptions(time_budget="10m", space=str(capped))).samples == 7  # the file's run_cap too
    smoke = search_plan(SearchOptions(time_budget="10m", smoke_test=True))
    assert not smoke.until_budget and smoke.samples == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--time-budget '0': the budget must be more than 0"),
        ("-5m", "--time-budget '-5m': a duration must be positive"),
        ("ten minutes", "--time-budget 'ten minutes': not a duration"),
    ],
)
def test_bad_time_budget_is_one_line_and_writes_nothing(tmp_path, value: str, message: str) -> None:
    storage = tmp_path / "results"
    proc = search_cli("--time-budget", value, "--no_wandb", "--storage-path", str(storage), "--name", "x")
    out, _ = proc.communicate(timeout=600)
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, out
    assert lines == [f"error: {message}; give e.g. 90s, 10m, 1h or 1h30m"], out
    assert not storage.exists()
    with pytest.raises(BudgetError):
        parse_duration(value)


def run_cli(*args: str) -> str:
    proc = search_cli(*args, env=FAIR_SHARE)  # the budget tests time start-up too: tests/conftest.py FAIR_SHARE
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


@needs_data
def test_budget_ends_the_search_with_checkpoints_kept_and_analysis_working(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    # No --samples: trials start until the budget ends (num_samples -1), each of up to 400 epochs; far
    # more work than the budget holds on a quiet machine or a busy one, so the budget, not a count, ends it.
    # The budget counts the driver's and the trials' start-up; the trials' workers run at nice 0 (FAIR_SHARE) so
    # other tests' processes do not starve them.
    out = run_cli("--space", space, *STAND_IN, "--max-epochs", "400", "--time-budget", "2m",
                  "--no_wandb", "--storage-path", str(tmp_path), "--name", "budget")  # fmt: skip
    root = tmp_path / "budget"
    best = json.loads((root / "best.json").read_text())
    (part,) = json.loads((root / "search.json").read_text())["parts"]
    assert best["ended_by"] == part["ended_by"] == "time budget" and best["time_budget_s"] == 120
    assert part["until_budget"] is True and part["samples"] == UNTIL_BUDGET
    assert 1 <= best["trials"] and part["trials"] == best["trials"]
    assert "trials until the time budget ended" in out
    assert f"{best['trials']} trials ran, 0 errored; the time budget (2m) ended the search" in out
    assert 3 < part["max_epochs"] <= 400

    experiment = load_experiment(root)
    # Trials keep starting while one can still reach its first rung, so the budget ends trials that are running
    # (start-up is not in that prediction): it cuts at least one, short of max_t, and labels only those.
    cut = experiment.trials["trial_id"].isin(part["budget_stopped"])
    assert len(part["budget_stopped"]) >= 1 and cut.sum() == len(part["budget_stopped"]), part
    assert set(experiment.trials.loc[cut, "status"]) == {"stopped by budget"}
    assert "stopped by budget" not in set(experiment.trials.loc[~cut, "status"])
    assert (experiment.trials.loc[cut, "epochs"] < part["max_epochs"]).all()
    reported = experiment.trials[experiment.trials["epochs"] > 0]
    assert len(reported) == best["trials"]
    for checkpoint, epochs in zip(reported["checkpoint"], reported["epochs"]):
        restored = load_checkpoint(checkpoint)  # every trial's best epoch, intact, the cut ones included
        assert 1 <= restored.metrics["epoch"] <= epochs
    state = json.loads(next(root.glob("experiment_state-*.json")).read_text())
    assert "TERMINATED" in json.dumps(state) and "RUNNING" not in json.dumps(state)

    report = subprocess.run([sys.executable, "-m", "analysis", str(root), "--data-dir", str(FASHION_DIR)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    summary = json.loads((root / "analysis" / "summary.json").read_text())
    assert summary["budget"]["ended_by"] == "time budget"
    assert summary["budget"]["trials_run"] == best["trials"]
    assert summary["budget"]["budget_stopped_trials"] == len(part["budget_stopped"])
    assert summary["budget"]["epochs_spent"] == len(experiment.histories)
    assert 0 < summary["budget"]["training_efficiency"] <= 1
    assert "The time budget (120 s) ended the search" in (root / "analysis" / "report.md").read_text()

    # The same --name with only a budget: more of the same search for that long, TPE warm-started from the first.
    # Its budget counts the start-up too (Ray, reading the first part, the trials' actors): on a busy 2-core machine
    # 45 s once ended before any trial reported, so 90 s.
    more = run_cli("--space", space, *STAND_IN, "--max-epochs", "400", "--time-budget", "90s",
                   "--no_wandb", "--storage-path", str(tmp_path), "--name", "budget")  # fmt: skip
    first, second = json.loads((root / "search.json").read_text())["parts"]
    assert first == part and second["folder"] == "part-2" and second["until_budget"] is True
    assert second["ended_by"] == "time budget" and second["time_budget_s"] == 90 and second["trials"] >= 1
    assert second["samples"] == UNTIL_BUDGET and len(second["warm_start"]) == first["trials"]
    both = json.loads((root / "best.json").read_text())
    assert both["parts"] == 2 and both["trials"] == first["trials"] + second["trials"]
    assert "trials until the time budget ended" in more and "the time budget (1m30s) ended the search" in more


@needs_data
def test_a_resumed_budgeted_search_ends_by_its_budget_within_what_was_left(tmp_path) -> None:
    """kill -9 of the driver after a few checkpoints, then --resume: the budget (not an interruption) ends it."""
    space = write_space(tmp_path / "space.yaml")
    args = ("--space", space, *STAND_IN, "--max-epochs", "400", "--time-budget", "90s", "--concurrency", "2",
            "--no_wandb", "--storage-path", str(tmp_path), "--name", "killed")  # fmt: skip
    root = tmp_path / "killed"
    proc = search_cli(*args, env=FAIR_SHARE, start_new_session=True)
    while proc.poll() is None:  # a few reported epochs, and Tune's state saved with them
        epochs = sum(len(p.read_text().splitlines()) for p in root.glob("trial_*/result.json"))
        if epochs >= 2 and state_saved(root):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the search ended before it could be killed: {proc.communicate()[0][-3000:]}")
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    killed = json.loads((root / "search.json").read_text())["parts"][0]
    assert killed["ended_by"] is None and "ended" not in killed["runs"][0]

    out = run_cli(*args, "--resume")
    (part,) = json.loads((root / "search.json").read_text())["parts"]
    assert part["ended_by"] == "time budget", out[-3000:]
    assert out.rstrip().splitlines()[-1].endswith("the time budget (1m30s) ended the search; "
                                                  f"report: python -m analysis {root}")  # fmt: skip
    assert "interrupted" not in out
    first, second = part["runs"]
    reports = [json.loads(line) for p in root.glob("trial_*/result.json") for line in p.read_text().splitlines()]
    before = max(r["timestamp"] for r in reports if r["timestamp"] < second["started"])
    left = 90 - (before - first["started"])  # at most what was left at the killed driver's last report
    after = [r["timestamp"] for r in reports if r["timestamp"] >= second["started"]]
    # The resumed driver ends within what was left, counted from when it began tuning again (on a busy machine
    # restarting the trials' workers may take all of it: then no epoch is reported after the resume).
    assert second["started"] <= second["tuning"] <= second["ended"] <= second["tuning"] + left + TUNE_RESTORE_S
    assert all(timestamp <= second["ended"] for timestamp in after)


def test_an_extensions_asha_meets_the_earlier_trials_at_its_rungs() -> None:
    """The earlier trials are told to ASHA as trials that ran (its public trial events), so a new trial below them
    at a rung stops there; alone, ASHA lets the first trial at a rung go on."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    from tune_mlp.search.searchers import WarmASHA

    earlier = {"old_1": {1: 0.90, 2: 0.91, 3: 0.95}, "old_2": {1: 0.80}, "no_epochs": {}}
    decisions = {}
    for name, histories in (("warm", earlier), ("cold", {})):
        asha = WarmASHA(histories, max_t=9, grace_period=1, reduction_factor=3)
        assert asha.set_search_properties("val_accuracy", "max")
        new = Trial("new", trial_id="new_1", stub=True)
        asha.on_trial_add(None, new)
        decisions[name] = asha.on_trial_result(None, new, {"epoch": 1, "val_accuracy": 0.5})
    assert decisions == {"warm": TrialScheduler.STOP, "cold": TrialScheduler.CONTINUE}


EXTEND_ARGS = (*STAND_IN, "--max-epochs", "2", "--grace-period", "1", "--initial-points", "2", "--no_wandb")


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> tuple[Path, str, str]:
    """A finished 2-trial search, then the same command with --samples 4."""
    tmp = tmp_path_factory.mktemp("extend")
    space = write_space(tmp / "space.yaml")
    common = ("--space", space, *EXTEND_ARGS, "--storage-path", str(tmp), "--name", "ext")
    first = run_cli("--samples", "2", *common)
    second = run_cli("--samples", "4", *common)
    return tmp / "ext", first, second


@needs_data
def test_extending_runs_exactly_the_new_trials_warm_started_from_the_earlier_ones(extended) -> None:
    root, first, second = extended
    record = json.loads((root / "search.json").read_text())
    assert [p["folder"] for p in record["parts"]] == [".", "part-2"]
    assert [p["samples"] for p in record["parts"]] == [2, 2]
    assert [p["ended_by"] for p in record["parts"]] == ["samples", "samples"]
    first_trials = {d.name.removeprefix("trial_") for d in root.glob("trial_*")}
    new_trials = {d.name.removeprefix("trial_") for d in (root / "part-2").glob("trial_*")}
    assert len(first_trials) == 2 and len(new_trials) == 2 and not first_trials & new_trials

    # The searcher of part 2 was given both earlier results before proposing: their ids and scores ...
    warm = record["parts"][1]["warm_start"]
    experiment = load_experiment(root)
    scores = {
        trial: json.loads((root / f"trial_{trial}" / "result.json").read_text().splitlines()[-1])["val_accuracy"]
        for trial in first_trials
    }
    assert {w["trial_id"]: w["reward"] for w in warm} == pytest.approx(scores)
    # ... and its saved TPE history (restored as Tune restores a searcher) holds them as finished trials next to its
    # own two.
    (state_file,) = (root / "part-2").glob("searcher-state-*.pkl")
    tpe = TPE()
    tpe.restore(str(state_file))
    trials = tpe.get_state()["hyperopt_trials"]
    losses = sorted(-loss for loss, status in zip(trials.losses(), trials.statuses()) if status == "ok")
    assert len(losses) == 4
    assert all(any(loss == pytest.approx(score) for loss in losses) for score in scores.values())

    # One search to every reader: 4 trials, one best over both parts.
    assert len(experiment.trials) == 4
    assert experiment.best.score == pytest.approx(experiment.trials["val_accuracy"].max())
    best = json.loads((root / "best.json").read_text())
    assert best["trials"] == 4 and best["parts"] == 2 and best["best"] == experiment.best.to_dict()
    assert "4 trials ran, 0 errored" in second and "2 trials ran, 0 errored" in first
    assert ", 4 trials\n" in second and ", 2 trials\n" in first  # the "search:" line: trials asked, all parts


@needs_data
def test_extending_with_another_space_is_an_error_that_changes_nothing(extended, tmp_path) -> None:
    root, _, _ = extended
    before = {p: p.read_bytes() for p in root.rglob("*.json")}
    other = write_space(tmp_path / "other.yaml", TINY_SPACE.replace("[16, 32]", "[16, 64]"))
    proc = search_cli("--samples", "6", "--space", other, *EXTEND_ARGS, "--storage-path", str(root.parent),
                      "--name", "ext")  # fmt: skip
    out, _ = proc.communicate(timeout=600)
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, out
    assert len(errors) == 1 and "was searched over another space" in errors[0] and "same --space" in errors[0]
    assert not (root / "part-3").exists()
    assert {p: p.read_bytes() for p in root.rglob("*.json")} == before
