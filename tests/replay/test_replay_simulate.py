"""The simulator replays a hand-made table with two workers exactly: real HyperOpt (its points first) and
real ASHA, every event in order, which trials ASHA stops, and the regret; the random floor by brute force."""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from tune_mlp.replay.floor import expected_best_test, outcomes, random_floor
from tune_mlp.replay.simulate import _max_pending, optimum, simulate, time_to_near
from tune_mlp.replay.table import CURVE_COLUMNS, load_table
from tune_mlp.search.searchers import TPE

# config id: (hidden_size, optimizer, val accuracy per epoch, seconds per epoch, test = val + this)
CURVES = {
    0: (64, "sgd", [0.50, 0.60, 0.65, 0.70], 1.0, -0.01),
    1: (64, "adam", [0.70, 0.80, 0.85, 0.88], 2.0, -0.01),
    2: (128, "sgd", [0.40, 0.45, 0.50, 0.52], 1.5, -0.01),
    3: (128, "adam", [0.75, 0.82, 0.86, 0.87], 1.0, 0.005),
}


def write_table(path: Path, curves: dict = CURVES, seeds: tuple[int, ...] = (0,)) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hidden_size", "optimizer", *CURVE_COLUMNS])
        for seed in seeds:
            for config_id, (size, optimizer, vals, seconds, shift) in curves.items():
                for epoch, val in enumerate(vals, start=1):
                    test = round(val + shift + 0.001 * seed, 6)
                    writer.writerow([size, optimizer, config_id, seed, epoch, 1 - val, val, 1 - val, val, 1 - test,
                                     test, seconds, 0.0])  # fmt: skip
    return path


def test_two_workers_replay_exactly(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path / "tiny.csv.gz"))
    points = [{"hidden_size": CURVES[i][0], "optimizer": CURVES[i][1]} for i in range(4)]
    searcher = ConcurrencyLimiter(TPE(points_to_evaluate=points, random_state_seed=0), max_concurrent=2)
    scheduler = ASHAScheduler(time_attr="epoch", max_t=4, grace_period=1, reduction_factor=2)
    space = {"hidden_size": tune.choice([64, 128]), "optimizer": tune.choice(["sgd", "adam"])}
    run = simulate(table, searcher, scheduler, space=space, workers=2, samples=4, seed=0)

    assert [(t, trial, what) for t, trial, what in run.events] == [
        (0.0, "00000", "start"), (0.0, "00001", "start"),
        (1.0, "00000", "result 1 CONTINUE"),  # alone at rung 1: its own cutoff
        (2.0, "00001", "result 1 CONTINUE"),  # same time as trial 0's epoch 2, but its epoch was queued first
        (2.0, "00000", "result 2 CONTINUE"),
        (3.0, "00000", "result 3 CONTINUE"),
        (4.0, "00001", "result 2 CONTINUE"),
        (4.0, "00000", "result 4 STOP"), (4.0, "00000", "done"),  # max_t: ASHA says STOP, the run is complete
        (4.0, "00002", "start"),
        (5.5, "00002", "result 1 STOP"), (5.5, "00002", "stop"),  # 0.40 < median(0.50, 0.70, 0.40) at rung 1
        (5.5, "00003", "start"),
        (6.0, "00001", "result 3 CONTINUE"),
        (6.5, "00003", "result 1 CONTINUE"),
        (7.5, "00003", "result 2 CONTINUE"),  # 0.82 >= median(0.60, 0.80, 0.82) at rung 2
        (8.0, "00001", "result 4 STOP"), (8.0, "00001", "done"),
        (8.5, "00003", "result 3 CONTINUE"),
        (9.5, "00003", "result 4 STOP"), (9.5, "00003", "done"),
    ]  # fmt: skip
    assert run.ended == {"00000": ("DONE", 4), "00001": ("DONE", 4), "00002": ("STOP", 1), "00003": ("DONE", 4)}
    assert [r.row for r in run.reports[:2]] == [0, 1]
    best, row, length = optimum(table)
    assert (best, row, length) == (pytest.approx(0.875), 3, 4)  # config 3's test is 0.005 over its validation
    picked = run.picked()
    assert (picked.trial_id, picked.epoch, picked.val) == ("00001", 4, 0.88)  # best validation, worse test
    assert best - picked.test == pytest.approx(0.005)
    assert best - run.picked(until=7.9).test == pytest.approx(0.875 - 0.84)  # trial 1 epoch 3 leads until 8.0
    assert time_to_near(run, best, near=0.006) == 8.0
    assert run.duration == 9.5


def test_max_pending_is_the_concurrency_limit() -> None:
    # Ray 2.60 TuneController._get_max_pending_trials: a ConcurrencyLimiter's limit, else 1 for a Searcher
    assert _max_pending(ConcurrencyLimiter(TPE(), max_concurrent=7)) == 7
    assert _max_pending(TPE()) == 1


def test_random_floor_is_brute_force(tmp_path: Path) -> None:
    curves = {
        0: (64, "sgd", [0.50, 0.61], 1.0, -0.01),
        1: (64, "adam", [0.70, 0.60], 1.0, 0.02),  # best validation at epoch 1
        2: (128, "sgd", [0.40, 0.66], 1.0, -0.03),
    }
    table = load_table(write_table(tmp_path / "floor.csv.gz", curves, seeds=(0, 1)))
    val, test = outcomes(table, (1, 2))
    assert len(val) == 3 * 2 * 2  # configs x seeds x trial lengths
    for n in (1, 2, 3):
        brute = np.mean([test[max(draw, key=lambda i: (val[i], -i))] if len(set(val[list(draw)])) == len(draw)
                         else np.mean(test[[i for i in draw if val[i] == val[list(draw)].max()]])
                         for draw in itertools.product(range(len(val)), repeat=n)])  # fmt: skip
        assert expected_best_test(val, test, n) == pytest.approx(brute)
    best = optimum(table, (1, 2))[0]
    assert random_floor(table, 1, best, (1, 2)) == pytest.approx(best - test.mean())


def test_tpe_waits_for_scored_trials() -> None:
    """With 8 trials running and none scored, n_initial_points=6 still draws at random (HyperOpt alone would
    fit TPE on six running trials from the seventh on): the same draws as a searcher that is random throughout."""
    space = {"hidden_size": tune.choice([64, 128, 256, 512]), "optimizer": tune.choice(["sgd", "adam", "nadam"]),
             "learning_rate": tune.loguniform(1e-4, 1e-1)}  # fmt: skip

    def draws(initial: int) -> list[dict]:
        searcher = TPE(n_initial_points=initial, random_state_seed=5)
        searcher.set_search_properties("val_accuracy", "max", space)
        return [searcher.suggest(str(i)) for i in range(8)]

    assert draws(6) == draws(100)
    warm = [{"trial_id": "a", "config": draws(100)[0], "reward": 0.8}, {"trial_id": "b", "config": draws(100)[1],
            "reward": 0.7}]  # fmt: skip
    searcher = TPE(n_initial_points=2, random_state_seed=5, evaluated=warm)
    searcher.set_search_properties("val_accuracy", "max", space)
    assert searcher.suggest("0") != draws(100)[0]  # two scored (warm) trials: TPE from the first suggestion


def test_tpe_proposes_no_config_twice_until_the_space_is_spent() -> None:
    """Every trial trains with the same seed, so a repeat would only give its result again."""
    space = {"hidden_size": tune.choice([64, 128, 256]), "optimizer": tune.choice(["sgd", "adam", "nadam"])}
    score = {64: 0.80, 128: 0.85, 256: 0.84, "sgd": 0.0, "adam": 0.05, "nadam": 0.04}

    def search(seed: int, repeats: bool, trials: int) -> list[tuple]:
        searcher = TPE(n_initial_points=2, random_state_seed=seed, repeats=repeats)
        searcher.set_search_properties("val_accuracy", "max", space)
        out = []
        for i in range(trials):
            config = searcher.suggest(str(i))
            out.append((config["hidden_size"], config["optimizer"]))
            searcher.on_trial_complete(str(i), {"val_accuracy": score[out[-1][0]] + score[out[-1][1]]})
        return out

    assert any(len(set(search(seed, True, 6))) < 6 for seed in range(3))  # HyperOpt alone repeats its favourite
    for seed in range(3):
        assert len(set(search(seed, False, 9))) == 9  # all nine configs, each once
        assert len(search(seed, False, 10)) == 10  # a spent space: a repeat rather than no trial


# The Ray release whose controller the replay copies (tune_mlp/replay/simulate.py, read from its source).
REPLAY_VERIFIED_RAY = "2.60"


def test_the_ray_calls_the_replay_mirrors() -> None:
    """The replay copies Ray 2.60's controller: on 2.60 this fails when what it copied differs; on another
    release it is skipped, saying so (Ray 2.52 keeps 1 trial pending behind a limiter, not its limit)."""
    import inspect

    import ray

    if ray.__version__.split(".")[:2] != REPLAY_VERIFIED_RAY.split("."):
        pytest.skip(
            f"verified-release check: the replay mirrors Ray {REPLAY_VERIFIED_RAY}'s TuneController and Ray "
            f"{ray.__version__} is installed (its replays model {REPLAY_VERIFIED_RAY}, not this release)"
        )
    from ray.tune.execution.tune_controller import TuneController, _get_max_pending_trials
    from ray.tune.search import SearchGenerator

    assert _get_max_pending_trials(SearchGenerator(ConcurrencyLimiter(TPE(), max_concurrent=7))) == 7
    assert _get_max_pending_trials(SearchGenerator(TPE())) == 1
    source = inspect.getsource(TuneController._process_trial_result)
    scheduler, searcher = source.index("_scheduler_alg.on_trial_result"), source.index("_search_alg.on_trial_result")
    assert scheduler < searcher  # the scheduler decides first; the searcher hears the result only without STOP
    assert "if decision == TrialScheduler.STOP:\n            result.update(done=True)\n        else:" in source


def test_a_fixed_training_seed_replays_what_a_real_search_trains(tmp_path: Path) -> None:
    # A real search trains every trial with TrainConfig.seed; the replay does the same when told the seed.
    table = load_table(write_table(tmp_path / "two.csv.gz", seeds=(0, 1)))  # seed 1's test is 0.001 higher
    space = {"hidden_size": tune.choice([64, 128]), "optimizer": tune.choice(["sgd", "adam"])}
    picked = {}
    for seed_index in (0, 1):
        searcher = ConcurrencyLimiter(TPE(random_state_seed=0), max_concurrent=2)
        scheduler = ASHAScheduler(time_attr="epoch", max_t=4, grace_period=1, reduction_factor=2)
        run = simulate(table, searcher, scheduler, space=space, workers=2, samples=4, seed=3,
                       training_seed=seed_index)  # fmt: skip
        assert {r.seed for r in run.reports} == {seed_index}
        picked[seed_index] = run.picked()
    assert picked[1].test - picked[0].test == pytest.approx(0.001)  # same searcher seed: same trials, same pick


def test_a_training_seed_the_table_lacks_is_refused() -> None:
    from tune_mlp.replay.bench import curve_case
    from tune_mlp.replay.table import TABLES_DIR, TableError

    with pytest.raises(TableError, match=r"study\.csv\.gz: has no training seed 7; pick one of \[0, 1, 2\]"):
        curve_case(str(TABLES_DIR / "study.csv.gz"), "study", training_seed=7)


def test_a_stopped_replay_run_resumes_from_its_store(tmp_path: Path) -> None:
    from tune_mlp.replay.bench import Case, replay_case

    table = load_table(write_table(tmp_path / "tiny.csv.gz"))
    space = {"hidden_size": tune.choice([64, 128]), "optimizer": tune.choice(["sgd", "adam"])}
    case = Case("tiny", table, space, (4,), samples=lambda workers: 4)
    store = tmp_path / "replays.jsonl"
    first = replay_case(case, ["ours", "random"], [2], [0, 1], store=str(store))
    assert len(store.read_text().splitlines()) == 4
    store.write_text(store.read_text().splitlines(keepends=True)[0])  # as if stopped after the first replay
    again = replay_case(case, ["ours", "random"], [2], [0, 1], store=str(store))
    assert again == first  # the stored one read back, the other three replayed the same
    assert len(store.read_text().splitlines()) == 4
