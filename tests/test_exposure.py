"""Secrets and exposure: a W&B key reaches no file, and what we ship keeps Ray's servers on 127.0.0.1 with a token."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import FASHION_DIR, REPO, TINY_SPACE
from wandb_runs import read_run


def files_holding(root: Path, secret: bytes) -> list[Path]:
    files = [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()]
    return [path for path in files if secret in path.read_bytes()]


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_a_wandb_key_reaches_no_file_of_a_search(tmp_path: Path) -> None:
    """A smoke search with W&B offline and a (fake) key: no result, W&B or Ray session file holds the key."""
    key = secrets.token_hex(20)  # W&B keys are 40 hex characters
    home, cwd, storage = tmp_path / "home", tmp_path / "cwd", tmp_path / "results"
    home.mkdir()
    cwd.mkdir()
    (tmp_path / "space.yaml").write_text(TINY_SPACE)
    ray_tmp = Path(tempfile.mkdtemp(prefix="tmsec-", dir="/tmp"))  # Ray's socket paths must stay < 108 chars
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_"))}
    env |= {
        "WANDB_API_KEY": key,
        "WANDB_MODE": "offline",
        "HOME": str(home),  # W&B's settings and caches, ~/.netrc: all inside this test
        "RAY_TMPDIR": str(ray_tmp),  # this run's Ray session logs, to be scanned too
        "PYTHONPATH": str(REPO),
    }
    try:
        ran = subprocess.run(
            # The stand-in's trials (no TensorFlow): the key's way runs through the driver, W&B and Ray, not training.
            [sys.executable, "-m", "tune_mlp.search", "--smoke-test", "--stand-in", "0.5",
             "--storage-path", str(storage), "--name", "secret", "--space", str(tmp_path / "space.yaml"),
             "--data-dir", str(FASHION_DIR)],
            cwd=cwd, env=env, capture_output=True, timeout=600,
        )  # fmt: skip
        output = ran.stdout + ran.stderr
        assert ran.returncode == 0, output.decode(errors="replace")[-4000:]
        offline_runs = list(storage.rglob("offline-run-*"))
        assert len(offline_runs) == 2, f"2 W&B offline runs expected, found {offline_runs}"
        for offline in offline_runs:  # each the run of its trial, with the trial's numbers
            rows = [json.loads(line) for line in (offline.parent.parent / "result.json").read_text().splitlines()]
            run = read_run(offline)
            assert run.id == rows[0]["trial_id"] and run.group == "secret"
            assert [row["val_accuracy"] for row in run.history] == [row["val_accuracy"] for row in rows]
        sessions = list(ray_tmp.rglob("session_*/logs"))
        assert sessions, f"no Ray session logs under {ray_tmp}"
        scanned = [p for root in (storage, home, cwd, ray_tmp) for p in root.rglob("*") if p.is_file()]
        assert len(scanned) > 50, scanned  # results, checkpoints, W&B runs and Ray's logs were all there
        leaks = [path for root in (storage, home, cwd, ray_tmp) for path in files_holding(root, key.encode())]
        assert leaks == [], f"the W&B key is in {leaks}"
        assert key.encode() not in output
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


# Addresses a Ray server may listen on in what we ship: the loopback only.
LOOPBACK = {"127.0.0.1", "localhost"}


def yaml_strings(value: object) -> list[str]:
    """Every string in a YAML document: folded commands (`>-`) become the one line the shell runs."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in yaml_strings(key) + yaml_strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in yaml_strings(item)]
    return [value] if isinstance(value, str) else []


def shipped_texts() -> dict[str, str]:
    """The commands and settings of every script and config we ship, by file."""
    texts = {str(path.relative_to(REPO)): path.read_text() for path in REPO.glob("scripts/*.sh")}
    for path in [*REPO.glob("scripts/*.yaml"), *REPO.glob("tune_mlp/**/*.yaml")]:
        documents = list(yaml.safe_load_all(path.read_text()))
        texts[str(path.relative_to(REPO))] = "\n".join(text for doc in documents for text in yaml_strings(doc))
    # docs/cluster.md: the commands of its shell blocks.
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "docs" / "cluster.md").read_text(), flags=re.S)
    texts["docs/cluster.md"] = "\n".join(blocks)
    return texts


def test_shipped_scripts_keep_ray_on_loopback_with_token_auth() -> None:
    texts = shipped_texts()
    shipped = {"scripts/submit.sh", "scripts/cluster.yaml", "scripts/rayjob.yaml", "tune_mlp/cluster/runtime_env.yaml"}
    assert shipped <= set(texts)
    starts = 0
    for name, text in texts.items():
        for host in re.findall(r"--dashboard-host[= ]+(\S+)", text):
            assert host.strip("'\"") in LOOPBACK, f"{name}: dashboard/job server on {host}"
        for line in re.findall(r"ray start --head[^\n]*(?:\\\n[^\n]*)*", text):
            starts += 1
            assert "--dashboard-host" in line, f"{name}: `{line}` leaves the dashboard's host to Ray's default"
        assert "RAY_AUTH_MODE=disabled" not in text and "auth_mode: disabled" not in text, name
        for url in re.findall(r"RAY_ADDRESS[=:-]+\"?\$?\{?[A-Z_]*:?-?(https?://[^\s\"}]+)", text):
            assert url.split("//")[1].split(":")[0] in LOOPBACK, f"{name}: job server address {url}"
    assert starts >= 2, "no `ray start --head` found: the test reads the wrong files"
    starts_on_nodes = re.findall(r"[^\n]*ray start[^\n]*", texts["scripts/cluster.yaml"])
    assert len(starts_on_nodes) == 2 and all("RAY_AUTH_MODE=token" in line for line in starts_on_nodes), starts_on_nodes
    rayjob = (REPO / "scripts" / "rayjob.yaml").read_text()
    assert re.search(r"authOptions:\s*\n\s*mode:\s*token", rayjob), "rayjob.yaml: KubeRay must enable token auth"
    # In Kubernetes the job submitter reaches the head through its Service, so the pod binds all its
    # interfaces; what keeps it internal is the Service type, which must stay ClusterIP (the default).
    assert not re.search(r"serviceType:\s*(LoadBalancer|NodePort)", rayjob), "rayjob.yaml: head Service exposed"


def test_job_submission_keeps_token_auth_on() -> None:
    """tune_mlp.cluster.job turns token auth on before talking to a job server and refuses without a token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"HOME": tempfile.mkdtemp(prefix="tmtok-"), "PYTHONPATH": str(REPO), "RAY_ADDRESS": "http://127.0.0.1:9"}
    ran = subprocess.run(
        [str(REPO / "scripts" / "submit.sh"), "--smoke-test"], env=env, capture_output=True, text=True, timeout=120
    )
    shutil.rmtree(env["HOME"], ignore_errors=True)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.strip().splitlines() == [
        f"error: no Ray auth token: set RAY_AUTH_TOKEN or put the cluster's token in {env['HOME']}/.ray/auth_token "
        "(the head prints it with 'ray get-auth-token'; scripts/cluster.yaml copies yours to the nodes)"
    ]
