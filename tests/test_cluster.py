"""The search on a real two-node Ray cluster: submitted as a Ray job, and resumed after its driver is killed.

The cluster (tests/ray_cluster.py) is a head and a worker node on this machine, token auth on, stopped by pid.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import state_saved
from ray_cluster import DATA_DIR, JOB_TIMEOUT_S, REPO, Cluster, data_missing, tail, two_config_space, two_node_cluster

from tune_mlp.config import METRIC

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One two-node cluster for the module (tests/ray_cluster.py); always stopped at the end."""
    if reason := data_missing():
        pytest.skip(reason)
    pytest.importorskip("aiohttp", reason="ray[default] (dashboard and job server) is not installed")
    with two_node_cluster() as started:
        yield started


@dataclass
class JobRun:
    status: str
    logs: str
    experiment: Path


# Trials long enough (~5 s an epoch on one core) that the second trial's actor is up before the first trial
# ends: with reuse_actors=True, Tune hands a still-starting trial the first trial's idle actor, so two
# 2-epoch trials of the default space (~3 s each) both ran on one node when actor start-up took ~10 s.
SLOW_SMOKE_SPACE = two_config_space(num_layers=4, hidden_size=2048, batch_size=16)


@pytest.fixture(scope="module")
def smoke_job(cluster: Cluster) -> JobRun:
    """What docs/cluster.md tells a user to run: `RAY_ADDRESS=http://HEAD:PORT scripts/submit.sh --smoke-test ...`."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    results = cluster.tmp / "results"
    space = cluster.tmp / "slow_smoke_space.yaml"
    space.write_text(SLOW_SMOKE_SPACE)
    job_id = f"cluster-smoke-{uuid.uuid4().hex[:8]}"
    submitted = subprocess.run(
        [str(REPO / "scripts" / "submit.sh"), "--smoke-test", "--no_wandb", "--storage-path", str(results),
         "--name", "cl", "--concurrency", "2", "--space", str(space)],
        cwd=cluster.tmp, env=cluster.env | {"RAY_ADDRESS": cluster.dashboard_url, "SUBMISSION_ID": job_id},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert f"ray job logs -f {job_id} --address {cluster.dashboard_url}" in submitted.stdout
    assert "report:  python -m analysis ./ray_results/cl" in submitted.stdout
    client = JobSubmissionClient(cluster.dashboard_url, headers={"Authorization": f"Bearer {cluster.token}"})
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (status := client.get_job_status(job_id)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            status = f"TIMEOUT after {JOB_TIMEOUT_S}s ({status})"
            break
        time.sleep(2)
    return JobRun(str(status), client.get_job_logs(job_id), results / "cl")


def test_search_job_spreads_trials_over_both_nodes(cluster: Cluster, smoke_job: JobRun) -> None:
    assert smoke_job.status == "SUCCEEDED", f"job {smoke_job.status}; its logs:\n{smoke_job.logs[-6000:]}"
    experiment = smoke_job.experiment
    best = json.loads((experiment / "best.json").read_text())
    assert best["trials"] == 2 and best["errored_trials"] == 0, best
    assert best["best"]["metric"] == METRIC and 0.1 < best["best"]["score"] <= 1.0, best  # better than chance
    result_files = sorted(experiment.glob("trial_*/result.json"))
    assert len(result_files) == 2, f"smoke test runs 2 trials, found {result_files}"
    seen: set[str] = set()
    for path in result_files:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        assert rows, f"{path} is empty"
        assert all(row.get("node_id") for row in rows), f"{path}: a row without node_id"
        seen |= {row["node_id"] for row in rows}
    # Two concurrent 1-CPU trials need both 1-CPU nodes (trials outlast actor start-up: see SLOW_SMOKE_SPACE).
    assert set(cluster.node_ids) <= seen, (
        f"cluster nodes {cluster.node_ids}, trials ran on {sorted(seen)}; job logs:\n{smoke_job.logs[-8000:]}"
    )
    assert "2 Ray nodes share this run" in smoke_job.logs  # the driver warns about the node-local storage path


def test_analysis_reads_the_cluster_experiment(smoke_job: JobRun, tmp_path: Path) -> None:
    if not (REPO / "analysis" / "__main__.py").exists():
        pytest.skip("analysis/__main__.py does not exist yet: `python -m analysis` step not run")
    assert smoke_job.status == "SUCCEEDED", f"job {smoke_job.status}; its logs:\n{smoke_job.logs[-6000:]}"
    out = tmp_path / "report"
    ran = subprocess.run(
        [sys.executable, "-m", "analysis", str(smoke_job.experiment), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, f"python -m analysis failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    test_accuracy = summary["best"]["test_accuracy"]
    assert 0.1 < test_accuracy <= 1.0, summary
    assert f"test accuracy {test_accuracy:.4f}" in (out / "report.md").read_text()


SMALL_SPACE = """\
parameters:
  num_layers: {value: 1}
  hidden_size: {value: 32}
  batch_size: {value: 512}
  learning_rate: {distribution: log_uniform_values, min: 0.001, max: 0.01}
"""


def search_command(cluster: Cluster, experiment: Path, space: Path, *flags: str) -> list[str]:
    """The search CLI joined to the cluster, writing ``experiment``, on the node-shared data and ``space``."""
    return [
        sys.executable, "-m", "tune_mlp.search", "--address", cluster.gcs_address, *flags, "--no_wandb",
        "--storage-path", str(experiment.parent), "--name", experiment.name,
        "--data-dir", str(DATA_DIR), "--space", str(space),
    ]  # fmt: skip


def start_logged(command: list[str], cluster: Cluster, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=REPO, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)


# How long a search may take to report its first epoch before a test gives up; each message says its own figure.
FIRST_REPORT_S = 300  # the killed-driver search: Ray's start on two nodes plus a trial's first epoch, on 2 loaded cores


def test_killed_driver_resumes(cluster: Cluster) -> None:
    """SIGKILL the driver once a trial has reported, run the same command again: it finishes the 3 trials."""
    from ray.tune import ExperimentAnalysis

    space = cluster.tmp / "small_space.yaml"
    space.write_text(SMALL_SPACE)
    results = cluster.tmp / "results2"
    experiment = results / "resume-me"
    command = search_command(cluster, results / "resume-me", space, "--samples", "3", "--max-epochs", "3")
    first_log = cluster.tmp / "resume-first.log"
    first = start_logged(command, cluster, first_log)
    try:
        deadline = time.monotonic() + FIRST_REPORT_S
        while not (
            state_saved(experiment) and any(path.stat().st_size > 0 for path in experiment.glob("trial_*/result.json"))
        ):
            assert first.poll() is None, (
                f"the driver ended (exit {first.returncode}) before the kill:\n{tail(first_log)}"
            )
            assert time.monotonic() < deadline, f"no trial reported within {FIRST_REPORT_S} s:\n{tail(first_log)}"
            time.sleep(0.2)
    finally:
        first.kill()  # SIGKILL: no chance to save anything more
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=600)
    output = second.stdout + second.stderr
    assert second.returncode == 0, f"the rerun failed (exit {second.returncode}):\n{output[-6000:]}"
    assert f"resuming experiment {experiment}" in output
    trials = ExperimentAnalysis(str(experiment)).trials
    assert len(trials) == 3, f"3 trials expected, found {[t.trial_id for t in trials]}"
    assert [t.status for t in trials] == ["TERMINATED"] * 3, {t.trial_id: t.status for t in trials}
    assert (experiment / "best.json").is_file()


# ~3 s an epoch on one core over the full training split: the worker's trial is still running after it has
# reported (and checkpointed) its first epoch, so the kill lands mid-trial.
LOSS_SPACE = """\
parameters:
  num_layers: {value: 2}
  hidden_size: {value: 512}
  batch_size: {value: 32}
  optimizer: {value: adam}
  learning_rate: {values: [0.001, 0.0003]}
"""
LOSS_EPOCHS = 5
WORKER_REPORT_S = 400  # until the worker node's trial has reported an epoch (~3 s an epoch, after Ray's start)


def _rows(result_file: Path) -> list[dict]:
    return [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]


def _trial_on(experiment: Path, node_id: str) -> Path | None:
    """The trial folder with a reported (so checkpointed) epoch from `node_id`, if any yet."""
    for result_file in experiment.glob("trial_*/result.json"):
        try:
            rows = _rows(result_file)
        except json.JSONDecodeError:  # a line being written
            continue
        if any(row.get("node_id") == node_id for row in rows):
            return result_file.parent
    return None


def test_lost_worker_node_costs_no_trial(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL the worker node's whole process family while its trial runs: the trial resumes on the head.

    Last in the module: the cluster has one node afterwards (no later test needs two). Storage is a local
    path, which both nodes see because they share this machine's filesystem (docs/cluster.md).
    """
    from ray.tune import ExperimentAnalysis

    from tune_mlp.mlp.checkpoint import load_checkpoint

    worker_id = cluster.worker_ids[0]
    head_id = next(node for node in cluster.node_ids if node != worker_id)
    space = cluster.tmp / "loss_space.yaml"
    space.write_text(LOSS_SPACE)
    experiment = cluster.tmp / "results3" / "lose-a-node"
    command = search_command(
        cluster, experiment, space, "--samples", "2", "--concurrency", "2",
        "--max-epochs", str(LOSS_EPOCHS), "--grace-period", str(LOSS_EPOCHS),
    )  # fmt: skip
    log = cluster.tmp / "lose-a-node.log"
    search = start_logged(command, cluster, log)
    try:
        deadline = time.monotonic() + WORKER_REPORT_S
        while (lost := _trial_on(experiment, worker_id)) is None:
            assert search.poll() is None, f"the search ended (exit {search.returncode}) before the kill:\n{tail(log)}"
            assert time.monotonic() < deadline, (
                f"no trial reported from the worker within {WORKER_REPORT_S} s:\n{tail(log)}"
            )
            time.sleep(0.2)
        cluster.kill_node(1)  # the raylet, its workers (the trial's actor) and agents, by pid
        search.wait(timeout=600)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait(timeout=30)
    assert search.returncode == 0, f"the search failed (exit {search.returncode}):\n{tail(log, 8000)}"

    rows = _rows(lost / "result.json")
    epochs = [row["epoch"] for row in rows]
    assert sorted(set(epochs)) == list(range(1, LOSS_EPOCHS + 1)), f"{lost.name} epochs {epochs}"
    on_worker = [row["epoch"] for row in rows if row["node_id"] == worker_id]
    resumed = [row for row in rows if row["resumed_from"] > 0]
    assert on_worker and max(on_worker) < LOSS_EPOCHS, f"{lost.name}: worker epochs {on_worker}, all {epochs}"
    assert resumed, f"{lost.name} never resumed from a checkpoint: {[(r['epoch'], r['node_id']) for r in rows]}"
    # Continuous: it picked up from the last checkpoint the worker wrote, on the surviving node.
    assert {row["node_id"] for row in resumed} == {head_id}, resumed
    assert resumed[0]["resumed_from"] == max(on_worker) and resumed[0]["epoch"] == max(on_worker) + 1, rows

    trials = ExperimentAnalysis(str(experiment)).trials
    assert sorted(t.status for t in trials) == ["TERMINATED", "TERMINATED"], {t.trial_id: t.status for t in trials}
    best = json.loads((experiment / "best.json").read_text())
    assert best["trials"] == 2 and best["errored_trials"] == 0, best

    out = tmp_path / "report"
    ran = subprocess.run(
        [sys.executable, "-m", "analysis", str(experiment), "--out", str(out), "--data-dir", str(DATA_DIR)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, f"python -m analysis failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == {"total": 2, "completed": 2}, summary["trials"]  # none errored, none cut short
    checkpoint = load_checkpoint(experiment / summary["best"]["checkpoint"])
    assert checkpoint.epoch == summary["best"]["epoch"] and checkpoint.config.hidden_size == 512
    assert 0.7 < summary["best"]["test_accuracy"] <= 1.0, summary["best"]
