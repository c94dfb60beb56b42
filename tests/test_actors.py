"""Trial actors are reused, and replaced every --trials-per-actor trials: the requests, then a real search's pids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FASHION_DIR, search_cli, write_space

from tune_mlp.search.actors import TrialResources, generation


def test_generations_count_trials_per_actor_times_slots() -> None:
    assert [generation(i, 3, 2) for i in range(13)] == [0] * 6 + [1] * 6 + [2]
    assert {generation(i, 0, 2) for i in range(100)} == {0}  # 0: an actor is never replaced


def test_requests_are_equal_within_a_generation_and_differ_across() -> None:
    resources = TrialResources(cpus=2, trials_per_actor=2, slots=1)
    requests = [resources({"hidden_size": 16}) for _ in range(6)]
    assert all(r.bundles == [{"CPU": 2}] for r in requests)  # what the trial gets never changes
    assert requests[0] == requests[1] and requests[2] == requests[3] and requests[4] == requests[5]
    assert requests[1] != requests[2] and requests[3] != requests[4]
    # Another search counts its own trials from 0.
    assert TrialResources(cpus=2, trials_per_actor=2, slots=1)({}) == requests[0]


def trial_pids(root: Path) -> list[int]:
    """The worker process of each trial, in the order the trials started."""
    firsts = [json.loads(path.read_text().splitlines()[0]) for path in root.glob("trial_*/result.json")]
    return [row["pid"] for row in sorted(firsts, key=lambda row: row["timestamp"])]


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_a_search_replaces_its_worker_every_trials_per_actor_trials(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    proc = search_cli("--space", space, "--samples", "5", "--concurrency", "1", "--trials-per-actor", "2",
                      "--max-epochs", "1", "--grace-period", "1", "--no_wandb", "--storage-path", str(tmp_path),
                      "--name", "recycled")  # fmt: skip
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    assert "5 trials ran, 0 errored" in out
    pids = trial_pids(tmp_path / "recycled")
    # Trials 1-2 share a worker, 3-4 the next, 5 a third: TensorFlow's compiled programs die with each.
    assert len(pids) == 5
    assert pids[0] == pids[1] and pids[2] == pids[3]
    assert len({pids[0], pids[2], pids[4]}) == 3
