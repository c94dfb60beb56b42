"""Trial actors are reused, and replaced every --trials-per-actor trials: the requests, then a real search's pids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FASHION_DIR, search_cli, write_space

from tune_mlp.search.actors import GENERATION_KEY, TrialResources, WorkerGenerations, generation, hyperparameters


def test_generations_count_trials_per_actor_times_slots() -> None:
    assert [generation(i, 3, 2) for i in range(13)] == [0] * 6 + [1] * 6 + [2]
    assert {generation(i, 0, 2) for i in range(100)} == {0}  # 0: an actor is never replaced


def test_requests_are_equal_within_a_generation_and_differ_across() -> None:
    resources = TrialResources(cpus=2)
    requests = [resources({"hidden_size": 16, GENERATION_KEY: stamp}) for stamp in (0, 0, 1, 1, 2)]
    assert all(r.bundles == [{"CPU": 2}] for r in requests)  # what the trial gets never changes
    assert requests[0] == requests[1] and requests[2] == requests[3] and requests[0] == requests[4]
    assert requests[1] != requests[2] and requests[3] != requests[4]
    assert resources({"hidden_size": 16}) == requests[0]  # an unstamped trial (grid, random): generation 0


def test_the_searcher_stamps_proposals_by_generation_and_a_restored_one_goes_on_counting() -> None:
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.hyperopt import HyperOptSearch

    def searcher() -> WorkerGenerations:
        tpe = HyperOptSearch({"learning_rate": tune.loguniform(1e-4, 1e-1)}, metric="val_accuracy", mode="max",
                             random_state_seed=0)  # fmt: skip
        return WorkerGenerations(ConcurrencyLimiter(tpe, max_concurrent=8), trials_per_actor=2, slots=2)

    first = searcher()
    proposals = [first.suggest(f"t{i}") for i in range(5)]
    assert [p[GENERATION_KEY] for p in proposals] == [0, 0, 0, 0, 1]
    assert all(hyperparameters(p).keys() == {"learning_rate"} for p in proposals)
    restored = searcher()
    restored.set_state(first.get_state())  # what Tune's SearchGenerator does on Tuner.restore
    assert [restored.suggest(f"u{i}")[GENERATION_KEY] for i in range(4)] == [1, 1, 1, 2]


def trial_pids(root: Path) -> list[int]:
    """The worker process of each trial, in the order the trials started."""
    firsts = [json.loads(path.read_text().splitlines()[0]) for path in root.glob("trial_*/result.json")]
    return [row["pid"] for row in sorted(firsts, key=lambda row: row["timestamp"])]


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_a_search_replaces_its_worker_every_trials_per_actor_trials(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    # The stand-in's trials (no TensorFlow) are enough: what is tested is which worker process runs each.
    proc = search_cli("--space", space, "--samples", "5", "--concurrency", "1", "--trials-per-actor", "2",
                      "--stand-in", "0.2", "--max-epochs", "1", "--grace-period", "1", "--no_wandb",
                      "--storage-path", str(tmp_path), "--name", "recycled")  # fmt: skip
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "5 trials ran, 0 errored" in out
    pids = trial_pids(tmp_path / "recycled")
    # Trials 1-2 share a worker, 3-4 the next, 5 a third: TensorFlow's compiled programs die with each.
    assert len(pids) == 5
    assert pids[0] == pids[1] and pids[2] == pids[3]
    assert len({pids[0], pids[2], pids[4]}) == 3
    # The stamp is the worker's, not a hyperparameter: best.json and the trials table leave it out.
    best = json.loads((tmp_path / "recycled" / "best.json").read_text())["best"]
    assert GENERATION_KEY not in best["config"] and "learning_rate" in best["config"]


def test_the_reuse_rule_replaced_is_the_one_of_the_pinned_ray() -> None:
    """keep_starting_workers replaces TuneController._maybe_reuse_cached_actor: re-read it on another Ray."""
    import inspect

    import ray
    from ray.tune.execution.tune_controller import TuneController

    from tune_mlp.search.actors import KEEP_STARTING_CHECKED_RAY, keep_starting_workers

    assert ray.__version__ == KEEP_STARTING_CHECKED_RAY, (
        f"ray {ray.__version__}: re-check tune_mlp.search.actors.keep_starting_workers against "
        "TuneController._maybe_reuse_cached_actor (and _trial_to_actor, _started_actors), then update the pin"
    )
    keep_starting_workers()
    keep_starting_workers()  # idempotent: wrapped once
    tune_own = inspect.getsource(TuneController._maybe_reuse_cached_actor.replaced)
    assert "self._trial_to_actor" in tune_own and "Removing ORIGINAL ACTOR" in tune_own  # what it guards
    assert not hasattr(TuneController._maybe_reuse_cached_actor.replaced, "replaced")  # wrapped once


def test_every_slot_keeps_the_worker_it_started_while_short_trials_finish(tmp_path) -> None:
    import ray

    from tune_mlp.search.tuner import SearchOptions, run_search

    space = write_space(tmp_path / "space.yaml")
    # Eight logical slots on a 2-core machine, 24 trials far shorter than a worker's start: the first workers to
    # start finish trials while the others still import. Tune alone gives a waiting trial a finished trial's
    # worker and kills the one starting for it, at every finish: measured here, 24 trials ran on 2-3 workers
    # while the rest started and died unused. With keep_starting_workers each slot keeps the worker it started.
    options = SearchOptions(
        space=space, samples=24, max_epochs=1, grace_period=1, concurrency=8, trials_per_actor=0, stand_in=0.05,
        storage_path=str(tmp_path), name="kept", no_wandb=True,
    )  # fmt: skip
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    try:
        results = run_search(options)
    finally:
        ray.shutdown()
    assert len(results) == 24 and not results.errors
    pids = trial_pids(tmp_path / "kept")
    assert len(pids) == 24 and len(set(pids)) == 8, pids  # each slot kept its worker, and no other ran a trial
