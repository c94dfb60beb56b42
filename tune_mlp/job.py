"""``--address http://HEAD:8265``: hand the same search to a cluster's job server as a Ray job.

The job runs ``python -m tune_mlp.search --address auto ...`` on the head with this repository as
its working directory (``scripts/runtime_env.yaml`` says what is left out). Token auth: the Ray
client sends ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token`` when ``RAY_AUTH_MODE=token``. A W&B key
in this environment goes into the job's runtime env in memory, never into a file.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RUNTIME_ENV_FILE = REPO / "scripts" / "runtime_env.yaml"


def is_job_server(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def without_address(argv: Sequence[str]) -> list[str]:
    """The command line minus ``--address X`` (either spelling, with or without ``=``)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--address",):
            skip = True
        elif not arg.startswith("--address="):
            kept.append(arg)
    return kept


def submit_search(address: str, argv: Sequence[str], use_wandb: bool) -> str:
    from ray.job_submission import JobSubmissionClient

    runtime_env = yaml.safe_load(RUNTIME_ENV_FILE.read_text()) if RUNTIME_ENV_FILE.is_file() else {}
    runtime_env = dict(runtime_env or {}, working_dir=str(REPO))
    if use_wandb and os.environ.get("WANDB_API_KEY"):
        runtime_env.setdefault("env_vars", {})["WANDB_API_KEY"] = os.environ["WANDB_API_KEY"]
    entrypoint = shlex.join(["python", "-m", "tune_mlp.search", "--address", "auto", *without_address(argv)])
    client = JobSubmissionClient(address)
    job_id = client.submit_job(
        entrypoint=entrypoint, runtime_env=runtime_env, submission_id=f"tune-mlp-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    print(
        f"submitted job {job_id} to {address}\n"
        f"  follow:  ray job logs -f {job_id} --address {address}\n"
        f"  status:  ray job status {job_id} --address {address}\n"
        f"  stop:    ray job stop {job_id} --address {address}"
    )
    return job_id
