"""Four nodes on shared object storage, one lost: a search on `s3://` survives a worker node's death.

A head and three worker nodes (tests/ray_cluster.py) and a real S3 server (moto, tests/s3_server.py), all on
127.0.0.1; every node and client gets the endpoint and credentials in its environment, as docs/cluster.md
says. The search writes only to the bucket: nothing of it may land on a local disk, and the secret key in no
file at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_cluster import DATA_DIR, REPO, Cluster, data_missing, node_cluster, tail, two_config_space
from s3_server import S3Server, s3_server

pytestmark = pytest.mark.cluster

BUCKET = "tune-results"
NAME = "four-nodes"
URI = f"s3://{BUCKET}/ray_results/{NAME}"
EPOCHS = 3  # grace period = max_t: ASHA stops no trial early, so the lost trial has epochs left to resume
# ~3 s an epoch on one core over the training split: the worker's trial is still training after it has reported
# (and checkpointed to the bucket) its first epoch, so the kill lands mid-trial. (--smoke-test's slice would be
# cheaper, but its ASHA grace period of 1 may stop the worker's trial after its first epoch.)
SPACE = two_config_space(num_layers=2, hidden_size=512, batch_size=32)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    if reason := data_missing():
        pytest.skip(reason)
    pytest.importorskip("moto", reason="moto (the S3 server) is not installed")
    pytest.importorskip("boto3", reason="boto3 (to read the bucket) is not installed")
    with s3_server() as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def cluster(s3: S3Server) -> Iterator[Cluster]:
    """A head and three workers, each started with the S3 endpoint and credentials in its environment."""
    pytest.importorskip("aiohttp", reason="ray[default] (dashboard and job server) is not installed")
    with node_cluster(4, env=s3.env) as started:
        yield started


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _staged_trial_on(cluster: Cluster, node_ids: list[str]) -> tuple[str, str] | None:
    """(trial folder, node id) of a trial that reported an epoch from one of ``node_ids``, if any yet.

    Read from the driver's staging folder in the head's session: Tune uploads result.json to the bucket
    only now and then, the checkpoints at once.
    """
    for result_file in cluster.tmp.glob(f"*/session_*/artifacts/*/{NAME}/driver_artifacts/trial_*/result.json"):
        try:
            rows = _rows(result_file.read_text())
        except json.JSONDecodeError:  # a line being written
            continue
        for row in rows:
            if row.get("node_id") in node_ids:
                return result_file.parent.name, row["node_id"]
    return None


def _bucket_text(s3: S3Server, key: str) -> str:
    return s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


# How long the four-node search may take before a worker's trial has reported an epoch; the message says this figure.
WORKER_REPORT_S = 600


def test_lost_node_resumes_from_the_bucket(cluster: Cluster, s3: S3Server, tmp_path: Path) -> None:
    """SIGKILL the worker node training a trial: it goes on elsewhere from its checkpoint in the bucket."""
    space = cluster.tmp / "space.yaml"
    space.write_text(SPACE)
    command = [
        sys.executable, "-m", "tune_mlp.search", "--address", cluster.gcs_address, "--no_wandb", "--samples", "2",
        "--concurrency", "2", "--max-epochs", str(EPOCHS), "--grace-period", str(EPOCHS),
        "--storage-path", f"s3://{BUCKET}/ray_results", "--name", NAME,
        "--data-dir", str(DATA_DIR), "--space", str(space),
    ]  # fmt: skip
    log = cluster.tmp / "search.log"
    with log.open("w") as out:
        search = subprocess.Popen(command, cwd=REPO, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WORKER_REPORT_S
        while (found := _staged_trial_on(cluster, cluster.worker_ids)) is None:
            assert search.poll() is None, f"the search ended (exit {search.returncode}) before the kill:\n{tail(log)}"
            assert time.monotonic() < deadline, (
                f"no trial reported from a worker within {WORKER_REPORT_S} s:\n{tail(log)}"
            )
            time.sleep(0.2)
        lost, worker_id = found
        cluster.kill_node(1 + cluster.worker_ids.index(worker_id))  # raylet, workers, agents, by pid
        search.wait(timeout=900)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert search.returncode == 0, f"the search failed (exit {search.returncode}):\n{output[-8000:]}"
    assert f"report: python -m analysis {URI}" in output

    # Everything is in the bucket: Tune's state, both trials' results and their per-epoch checkpoints.
    prefix = f"ray_results/{NAME}/"
    keys = {key.removeprefix(prefix) for key in s3.keys(BUCKET, prefix)}
    assert "best.json" in keys and "search.json" in keys, sorted(keys)
    assert any(key.startswith("experiment_state-") for key in keys), sorted(keys)
    trials = sorted({key.split("/")[0] for key in keys if key.startswith("trial_")})
    assert len(trials) == 2 and lost in trials, f"trials in the bucket {trials}, lost {lost}"
    for trial in trials:  # every epoch of both trials, the lost one's included (all kept: num_to_keep >= EPOCHS)
        epochs = sorted({row["epoch"] for row in _rows(_bucket_text(s3, f"{prefix}{trial}/result.json"))})
        assert epochs == list(range(1, EPOCHS + 1)), f"{trial}: epochs {epochs}"
        for epoch in epochs:
            assert f"{trial}/checkpoint_{epoch - 1:06d}/weights.npz" in keys, f"{trial} epoch {epoch}: {sorted(keys)}"

    # The lost trial: its first epoch on the killed worker, then resumed on another node from that checkpoint.
    rows = _rows(_bucket_text(s3, f"{prefix}{lost}/result.json"))
    assert sorted({row["epoch"] for row in rows}) == list(range(1, EPOCHS + 1)), rows
    on_worker = [row["epoch"] for row in rows if row["node_id"] == worker_id]
    resumed = [row for row in rows if row["resumed_from"] > 0]
    assert on_worker and max(on_worker) < EPOCHS, f"{lost}: epochs on the killed worker {on_worker}"
    assert resumed and worker_id not in {row["node_id"] for row in resumed}, rows
    assert {row["node_id"] for row in resumed} <= set(cluster.node_ids), resumed
    assert resumed[0]["resumed_from"] == max(on_worker) and resumed[0]["epoch"] == max(on_worker) + 1, rows
    state = json.loads(_bucket_text(s3, f"{prefix}{lost}/checkpoint_{max(on_worker) - 1:06d}/state.json"))
    assert state["epoch"] == max(on_worker), state  # the checkpoint it resumed from, written by the lost node

    # No trial lost.
    best = json.loads(_bucket_text(s3, f"{prefix}best.json"))
    assert best["trials"] == 2 and best["errored_trials"] == 0, best
    assert best["best"]["checkpoint"].startswith(f"{URI}/trial_"), best["best"]

    # Nothing fell back to a local disk: not the default storage path, not the home's, no checkpoint folder.
    for local in (REPO / "ray_results" / NAME, Path.home() / "ray_results" / NAME):
        assert not local.exists(), f"{local} exists: the search wrote to a local disk"
    assert not list(cluster.tmp.rglob("checkpoint_0*")), "a checkpoint folder on a local disk"

    # A user reads the search from the bucket.
    out = tmp_path / "report"
    _user_runs(cluster, "analysis", URI, "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == {"total": 2, "completed": 2}, summary["trials"]
    assert summary["experiment_path"] == URI and summary["best"]["checkpoint"].startswith("trial_"), summary
    assert 0.1 < summary["best"]["test_accuracy"] <= 1.0, summary["best"]  # better than chance

    exported = tmp_path / "export"
    _user_runs(cluster, "tune_mlp.export", URI, "--out", str(exported))
    info = json.loads((exported / "export.json").read_text())
    assert info["source"]["checkpoint"] == best["best"]["checkpoint"], info["source"]
    assert info["metrics"]["test_accuracy"] == pytest.approx(summary["best"]["test_accuracy"]), info["metrics"]

    # The secret key reached no file: the nodes' temp dirs and logs, the reports, the bucket. As it is, and as Tune
    # writes a pickle into its JSON state (hex).
    leaks = (s3.secret_key.encode(), s3.secret_key.encode().hex().encode())
    scanned = {path: path.read_bytes() for root in (cluster.tmp, tmp_path) for path in root.rglob("*")
               if path.is_file() and not path.is_symlink()}  # fmt: skip
    assert len(scanned) > 50, f"only {len(scanned)} files scanned: the session logs are missing"
    assert [path for path, data in scanned.items() if any(leak in data for leak in leaks)] == []
    stored = {key: s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in s3.keys(BUCKET)}
    assert [key for key, data in stored.items() if any(leak in data for leak in leaks)] == []
    # ...and the scan read where it would be. Tune pickles its storage filesystem (which signs with the driver's
    # keys) into tuner.pkl and, in hex, into the experiment state: both name the server. Each node's runtime-env
    # agent logged the env vars Tune gives its trial actors, where Tune copies the AWS keys of the driver's
    # environment (tune_mlp.storage.keys_out_of_environ holds them out while Tune runs).
    endpoint = s3.endpoint.encode()
    assert endpoint in stored[f"{prefix}tuner.pkl"], "tuner.pkl holds no filesystem"
    states = [data for key, data in stored.items() if key.startswith(f"{prefix}experiment_state-")]
    assert states and all(endpoint.hex().encode() in data for data in states), "no filesystem in the state"
    agents = [path for path, data in scanned.items() if path.name.startswith("runtime_env_agent")
              and b"Creating runtime env" in data and b"PL_DISABLE_FORK" in data]  # fmt: skip
    assert agents, "no runtime-env agent log of a trial actor's env vars was scanned"


def _user_runs(cluster: Cluster, module: str, *args: str) -> None:
    """``python -m MODULE ARGS --data-dir …`` as a user runs it, with the cluster's S3 environment; must succeed."""
    ran = subprocess.run(
        [sys.executable, "-m", module, *args, "--data-dir", str(DATA_DIR)],
        cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, f"python -m {module} failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
