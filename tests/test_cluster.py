"""The search on a real two-node Ray cluster: submitted as a Ray job, and resumed after its driver is killed.

A module fixture starts a head and a worker node on this machine (one CPU each) with `ray start`, in their
own temp dir, on free ports, with token authentication and a fresh token that only this test knows (it is
passed in RAY_AUTH_TOKEN, so ~/.ray/auth_token is neither read nor written). At the end it stops exactly
the processes it started, by process id: `ray stop` would kill every Ray process on the machine, a
developer's own cluster included.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
OBJECT_STORE_BYTES = 500 * 1024**2  # the full training split (~220 MB) must fit on either node
START_TIMEOUT_S = 90
JOB_TIMEOUT_S = 300


def _ray_cli() -> str:
    beside = Path(sys.executable).parent / "ray"  # the ray of this interpreter, not another one on PATH
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) from /proc, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[1]), int(fields[19])


def _family(root: int) -> dict[int, int]:
    """The process `root` and all its descendants: pid -> start time (to never signal a reused pid)."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            parents.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[1]
    family, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            family[pid] = starts[pid]
            todo.extend(parents.get(pid, []))
    return family


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return f"({path} does not exist)"


@dataclass
class Cluster:
    gcs_address: str  # for ray.init / --address
    dashboard_url: str  # the job server
    token: str
    env: dict[str, str]  # what a process needs to join or use the cluster
    tmp: Path
    nodes: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)  # `ray start --block`, its log
    node_ids: list[str] = field(default_factory=list)

    def start_node(self, name: str, args: list[str]) -> None:
        log = self.tmp / f"{name}.log"
        command = [
            _ray_cli(), "start", "--block", "--num-cpus", "1", "--object-store-memory", str(OBJECT_STORE_BYTES),
            "--temp-dir", str(self.tmp / name), "--disable-usage-stats",
            "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
            "--runtime-env-agent-port", str(_free_port()), "--metrics-export-port", str(_free_port()),
            *args,
        ]  # fmt: skip
        with log.open("w") as out:
            # Its own session: the `ray start --block` process is the parent of all of the node's processes.
            process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True
            )
        self.nodes.append((process, log))
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start ({name}) failed (exit {process.poll()}):\n{_tail(log)}")
            time.sleep(0.5)

    def alive_node_ids(self) -> list[str]:
        listed = subprocess.run(
            [_ray_cli(), "list", "nodes", "--address", self.dashboard_url, "--format", "json", "--limit", "100"],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        try:
            nodes = json.loads(listed.stdout) if listed.returncode == 0 else []
        except json.JSONDecodeError:  # the dashboard is still starting
            nodes = []
        return sorted(node["node_id"] for node in nodes if node.get("state") == "ALIVE")

    def stop(self) -> None:
        """SIGTERM each `ray start --block` (it stops its node), then SIGKILL whatever of its family is left."""
        for process, _ in reversed(self.nodes):  # worker first
            family = _family(process.pid)  # before the signal: orphans would no longer be found
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            for pid, start in family.items():
                if (stat := _proc_stat(pid)) and stat[1] == start:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the node's own session; a no-op when it is empty
            except (ProcessLookupError, PermissionError):
                pass
            process.wait(timeout=30)


def _data_missing() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (/proc) to stop only its own Ray processes"
    if not (DATA_DIR.is_dir() and any(DATA_DIR.glob("train-images*"))):
        return f"Fashion-MNIST is not installed at {DATA_DIR} (sudo apt-get install dataset-fashion-mnist)"
    return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head and a worker node on 127.0.0.1 with one CPU each, token auth on; always stopped at the end."""
    if reason := _data_missing():
        pytest.skip(reason)
    pytest.importorskip("aiohttp", reason="ray[default] (dashboard and job server) is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="tmcl-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    token = secrets.token_hex(32)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "WANDB_"))}
    env.pop("TUNE_MLP_DATA_DIR", None)
    env |= {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,  # beats ~/.ray/auth_token: the developer's token is not used
        "RAY_USAGE_STATS_ENABLED": "0",
        # The job's entrypoint runs `python`: the interpreter of this test, as on a real cluster's nodes.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    }
    gcs_port, dashboard_port = _free_port(), _free_port()
    result = Cluster(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", token, env, tmp)
    try:
        result.start_node(
            "head",
            ["--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs_port), "--dashboard-host", "127.0.0.1",
             "--dashboard-port", str(dashboard_port), "--ray-client-server-port", str(_free_port())],
        )  # fmt: skip
        result.start_node("worker", ["--address", result.gcs_address])
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(result.node_ids) < 2:
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {log.name}\n{_tail(log, 2000)}" for _, log in result.nodes)
                raise RuntimeError(f"2 alive nodes expected, got {result.node_ids}\n{logs}")
            time.sleep(1)
            result.node_ids = result.alive_node_ids()
        yield result
    finally:
        result.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class JobRun:
    status: str
    logs: str
    experiment: Path


# Trials long enough (~5 s an epoch on one core) that the second trial's actor is up before the first trial
# ends: with reuse_actors=True, Tune hands a still-starting trial the first trial's idle actor, so two
# 2-epoch trials of the default space (~3 s each) both ran on one node when actor start-up took ~10 s.
SLOW_SMOKE_SPACE = """\
parameters:
  num_layers: {value: 4}
  hidden_size: {value: 2048}
  batch_size: {value: 16}
  optimizer: {value: adam}
  learning_rate: {values: [0.001, 0.0003]}
"""


@pytest.fixture(scope="module")
def smoke_job(cluster: Cluster) -> JobRun:
    """`python -m tune_mlp.search --smoke-test` submitted through the job API, with the repo as working_dir."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    results = cluster.tmp / "results"
    space = cluster.tmp / "slow_smoke_space.yaml"
    space.write_text(SLOW_SMOKE_SPACE)
    runtime_env = yaml.safe_load((REPO / "scripts" / "runtime_env.yaml").read_text())  # what submit.sh sends
    runtime_env["working_dir"] = str(REPO)
    client = JobSubmissionClient(cluster.dashboard_url, headers={"Authorization": f"Bearer {cluster.token}"})
    job_id = client.submit_job(
        entrypoint=(
            "python -m tune_mlp.search --address auto --smoke-test --no_wandb "
            f"--storage-path {results} --name cluster-smoke --concurrency 2 --space {space}"
        ),
        runtime_env=runtime_env,
        submission_id=f"cluster-smoke-{uuid.uuid4().hex[:8]}",
    )
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (status := client.get_job_status(job_id)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            status = f"TIMEOUT after {JOB_TIMEOUT_S}s ({status})"
            break
        time.sleep(2)
    return JobRun(str(status), client.get_job_logs(job_id), results / "cluster-smoke")


def test_search_job_spreads_trials_over_both_nodes(cluster: Cluster, smoke_job: JobRun) -> None:
    assert smoke_job.status == "SUCCEEDED", f"job {smoke_job.status}; its logs:\n{smoke_job.logs[-6000:]}"
    experiment = smoke_job.experiment
    assert (experiment / "best.json").is_file(), f"no best.json in {experiment}: {sorted(experiment.iterdir())}"
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
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, f"python -m analysis failed:\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    assert (out / "summary.json").is_file(), f"no summary.json in {out}: {sorted(out.iterdir())}"


SMALL_SPACE = """\
parameters:
  num_layers: {value: 1}
  hidden_size: {value: 32}
  batch_size: {value: 512}
  learning_rate: {distribution: log_uniform_values, min: 0.001, max: 0.01}
"""


def test_killed_driver_resumes(cluster: Cluster) -> None:
    """SIGKILL the driver once a trial has reported, run the same command again: it finishes the 3 trials."""
    from ray.tune import ExperimentAnalysis

    space = cluster.tmp / "small_space.yaml"
    space.write_text(SMALL_SPACE)
    results = cluster.tmp / "results2"
    experiment = results / "resume-me"
    command = [
        sys.executable, "-m", "tune_mlp.search", "--address", cluster.gcs_address, "--samples", "3",
        "--max-epochs", "3", "--no_wandb", "--storage-path", str(results), "--name", "resume-me",
        "--data-dir", str(DATA_DIR), "--space", str(space),
    ]  # fmt: skip
    first_log = cluster.tmp / "resume-first.log"
    with first_log.open("w") as out:
        first = subprocess.Popen(command, cwd=REPO, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 150
        while not (
            any(experiment.glob("experiment_state-*.json"))
            and any(path.stat().st_size > 0 for path in experiment.glob("trial_*/result.json"))
        ):
            assert first.poll() is None, (
                f"the driver ended (exit {first.returncode}) before the kill:\n{_tail(first_log)}"
            )
            assert time.monotonic() < deadline, f"no trial reported within 150 s:\n{_tail(first_log)}"
            time.sleep(0.2)
    finally:
        first.kill()  # SIGKILL: no chance to save anything more
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(command, cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=240)
    output = second.stdout + second.stderr
    assert second.returncode == 0, f"the rerun failed (exit {second.returncode}):\n{output[-6000:]}"
    assert f"resuming experiment {experiment}" in output
    trials = ExperimentAnalysis(str(experiment)).trials
    assert len(trials) == 3, f"3 trials expected, found {[t.trial_id for t in trials]}"
    assert [t.status for t in trials] == ["TERMINATED"] * 3, {t.trial_id: t.status for t in trials}
    assert (experiment / "best.json").is_file()


def test_search_cli_with_a_job_server_address_submits_a_ray_job(cluster: Cluster) -> None:
    """`python -m tune_mlp.search --address http://HEAD:8265 ...` becomes a Ray job running the same search."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    space = cluster.tmp / "small_space_http.yaml"
    space.write_text(SMALL_SPACE)
    results = cluster.tmp / "results3"
    submitted = subprocess.run(
        [sys.executable, "-m", "tune_mlp.search", "--address", cluster.dashboard_url, "--samples", "2",
         "--max-epochs", "2", "--no_wandb", "--storage-path", str(results), "--name", "via-http",
         "--space", str(space)],
        cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    job_id = submitted.stdout.split("submitted job ", 1)[1].split()[0]
    assert f"ray job logs -f {job_id}" in submitted.stdout
    client = JobSubmissionClient(cluster.dashboard_url, headers={"Authorization": f"Bearer {cluster.token}"})
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (status := client.get_job_status(job_id)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {JOB_TIMEOUT_S}s"
        time.sleep(2)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-6000:]
    assert "--address auto" in client.get_job_info(job_id).entrypoint
    assert json.loads((results / "via-http" / "best.json").read_text())["trials"] == 2
