"""A real Ray cluster of N nodes on 127.0.0.1 for the `cluster` tests, stopped by process id.

`node_cluster(n)` (and `two_node_cluster()`) starts a head and n - 1 worker nodes on this machine (one CPU
each) with `ray start`, each in its own temp dir, on free ports, with token authentication and a fresh token
that only the tests know (it is passed in RAY_AUTH_TOKEN, so ~/.ray/auth_token is neither read nor written).
At the end it stops exactly the processes it started, by process id: `ray stop` would kill every Ray process
on the machine, a developer's own cluster included. Test modules wrap it in a module-scoped fixture (one
cluster per module).
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
OBJECT_STORE_BYTES = 500 * 1024**2  # the full training split (~220 MB) must fit on either node
START_TIMEOUT_S = 180
START_ATTEMPTS = 4  # a worker node's `ray start`, see Cluster.start_worker
JOB_TIMEOUT_S = 600


def two_config_space(num_layers: int, hidden_size: int, batch_size: int) -> str:
    """A space file of one network and two learning rates: two trials whose length the caller sizes."""
    return f"""\
parameters:
  num_layers: {{value: {num_layers}}}
  hidden_size: {{value: {hidden_size}}}
  batch_size: {{value: {batch_size}}}
  optimizer: {{value: adam}}
  learning_rate: {{values: [0.001, 0.0003]}}
"""


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


def tail(path: Path, chars: int = 4000) -> str:
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
    worker_ids: list[str] = field(default_factory=list)  # node ids of the workers, in start order (nodes[1:])

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
                raise RuntimeError(f"ray start ({name}) failed (exit {process.poll()}):\n{tail(log)}")
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

    def start_worker(self) -> str:
        """Join one more 1-CPU worker node and wait until the cluster lists it; returns its node id."""
        before = set(self.alive_node_ids())
        name = f"worker{len(self.nodes)}"
        # On a loaded machine a raylet can miss Ray's fixed 30 s to register ("timed out during startup": ray 2.60
        # has no knob for it; CI's 2 cores with five xdist workers missed it twice in a row once): stop what that
        # start left, by pid, give the GCS a few seconds, and try again.
        for attempt in range(START_ATTEMPTS):
            try:
                self.start_node(f"{name}-try{attempt}" if attempt else name, ["--address", self.gcs_address])
                break
            except RuntimeError:
                self.kill_node(len(self.nodes) - 1)
                self.nodes.pop()
                if attempt == START_ATTEMPTS - 1:
                    raise
                time.sleep(5 * (attempt + 1))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (new := set(self.alive_node_ids()) - before):
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {log.name}\n{tail(log, 2000)}" for _, log in self.nodes)
                raise RuntimeError(f"no new alive node after {START_TIMEOUT_S}s (had {sorted(before)})\n{logs}")
            time.sleep(1)
        self.node_ids = self.alive_node_ids()
        self.worker_ids.append(new.pop())
        return self.worker_ids[-1]

    def kill_node(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Signal node `index` (0 = head) and its whole process family by pid: its raylet, workers, agents."""
        process, _ = self.nodes[index]
        family = _family(process.pid)  # before the signal: orphans would no longer be found
        if sig != signal.SIGKILL and process.poll() is None:
            process.send_signal(sig)  # `ray start --block` stops its node on SIGTERM
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

    def stop(self) -> None:
        """SIGTERM each `ray start --block` (it stops its node), then SIGKILL whatever of its family is left."""
        for index in reversed(range(len(self.nodes))):  # workers first
            self.kill_node(index, signal.SIGTERM)


def data_missing() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (/proc) to stop only its own Ray processes"
    if not (DATA_DIR.is_dir() and any(DATA_DIR.glob("train-images*"))):
        return f"Fashion-MNIST is not installed at {DATA_DIR} (sudo apt-get install dataset-fashion-mnist)"
    return None


@contextmanager
def two_node_cluster() -> Iterator[Cluster]:
    """A head and a worker node on 127.0.0.1 with one CPU each, token auth on; always stopped at the end."""
    with node_cluster(2) as cluster:
        yield cluster


@contextmanager
def node_cluster(nodes: int, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A head and ``nodes - 1`` worker nodes on 127.0.0.1, one CPU each, token auth on; always stopped at the end.

    ``env``: more environment for every node and client (e.g. an S3 endpoint and its credentials: a node's
    workers inherit its environment, as on a real cluster where each node is started with them).
    """
    tmp = Path(tempfile.mkdtemp(prefix="tmcl-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    token = secrets.token_hex(32)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RAY_", "WANDB_"))} | (env or {})
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
        for _ in range(nodes - 1):
            result.start_worker()
        yield result
    finally:
        result.stop()
        shutil.rmtree(tmp, ignore_errors=True)
