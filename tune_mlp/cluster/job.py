"""``--address http://HEAD:8265``: hand the same search to a cluster's job server as a Ray job.

    python -m tune_mlp.search --address http://127.0.0.1:8265 --samples 40 --storage-path s3://bucket/ray_results
    scripts/submit.sh --samples 40 --storage-path s3://bucket/ray_results     # the same, job server from RAY_ADDRESS

The one submission path. The job runs ``python -m tune_mlp.cluster.driver`` (the search with ``--address auto``)
on the head. It ships the installed ``tune_mlp`` package as ``py_modules`` and the search space's text, never
a ``working_dir`` (docs/cluster.md says why). Token auth: the Ray client sends ``RAY_AUTH_TOKEN``, else
``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``. A W&B key in this environment stays here: Ray writes runtime
envs to its agents' logs in clear text, so the head needs its own key for online logging.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tune_mlp.errors import UserInputError
from tune_mlp.storage import is_uri

if TYPE_CHECKING:
    from tune_mlp.search.plan import SearchOptions

RUNTIME_ENV_FILE = Path(__file__).with_name("runtime_env.yaml")  # package data: in the wheel too
SPACE_TEXT_ENV = "TUNE_MLP_JOB_SPACE"  # the search space's YAML, written to a file by the driver
SPACE_NAME_ENV = "TUNE_MLP_JOB_SPACE_NAME"  # its name (the file's stem), as on the submitting machine
# Flags the job does not forward: it sets --address itself and ships the space as text.
NOT_FORWARDED = ("--address", "--space")


class JobSubmitError(UserInputError):
    """A submission that cannot work as asked (no token, a bad job server address)."""


def is_job_server(address: str | None) -> bool:
    return bool(address) and address.startswith(("http://", "https://"))


def without_flags(argv: Sequence[str], flags: Sequence[str] = NOT_FORWARDED) -> list[str]:
    """The command line minus ``FLAG X`` and ``FLAG=X`` for each of ``flags`` (underscores or hyphens)."""
    spellings = {spelling for flag in flags for spelling in (flag, flag.replace("-", "_").replace("__", "--", 1))}
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in spellings:
            skip = True
        elif arg.split("=", 1)[0] not in spellings:
            kept.append(arg)
    return kept


def require_token() -> None:
    """Token auth is on for every cluster we document: without a token the job server answers 401."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if os.environ.get("RAY_AUTH_TOKEN"):
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not (token_file.is_file() and token_file.stat().st_size > 0):
        raise JobSubmitError(
            f"no Ray auth token: set RAY_AUTH_TOKEN or put the cluster's token in {token_file} "
            "(the head prints it with 'ray get-auth-token'; scripts/cluster.yaml copies yours to the nodes)"
        )


def job_runtime_env(space_name: str, space_text: str) -> dict[str, Any]:
    """runtime_env.yaml plus the code (py_modules) and the space; never a W&B key (Ray logs runtime envs)."""
    import tune_mlp

    runtime_env = yaml.safe_load(RUNTIME_ENV_FILE.read_text()) or {}
    runtime_env["py_modules"] = [str(Path(tune_mlp.__file__).resolve().parent)]
    env_vars = runtime_env.setdefault("env_vars", {})
    env_vars |= {SPACE_TEXT_ENV: space_text, SPACE_NAME_ENV: space_name}
    return runtime_env


def submit_search(options: SearchOptions, argv: Sequence[str]) -> str:
    """Submit ``argv`` (a search command line) as a Ray job to ``options.address``; print what to do next."""
    from ray.job_submission import JobSubmissionClient

    from tune_mlp.search.space import resolve_space_path

    require_token()
    space = resolve_space_path(options.space)  # on this machine: a local file or a named space
    job_id = os.environ.get("SUBMISSION_ID") or f"tune-mlp-{time.strftime('%Y%m%d-%H%M%S')}"
    name = options.name or (None if options.resume else job_id)
    args = without_flags(argv) + (["--name", name] if name and not options.name else [])
    # The key never goes into the job's runtime env: Ray's runtime-env agents log runtime envs in clear text.
    client = JobSubmissionClient(options.address)
    client.submit_job(
        entrypoint=shlex.join(["python", "-m", "tune_mlp.cluster.driver", *args]),
        runtime_env=job_runtime_env(space.stem, space.read_text()),
        submission_id=job_id,
    )
    if options.wandb:
        print("W&B: the key stays here (Ray would log it); the job logs online only if the head has its own key")
    print(next_steps(job_id, options.address, options.storage_path, name))
    return job_id


def next_steps(job_id: str, address: str, storage_path: str, name: str | None) -> str:
    """The follow/status/stop/fetch/report/resume lines printed after a submission."""
    shown = name or "NAME"
    where = (
        storage_path.rstrip("/") if is_uri(storage_path) or storage_path.startswith(("/", "~")) else f"~/{storage_path}"
    )
    if storage_path.startswith("s3://"):
        fetch = f"aws s3 sync {where}/{shown} ./ray_results/{shown}"
    elif storage_path.startswith("gs://"):
        fetch = f"gcloud storage rsync -r {where}/{shown} ./ray_results/{shown}"
    elif is_uri(storage_path):
        fetch = f"copy {where}/{shown} to ./ray_results/ with your storage's tool"
    else:
        fetch = f"ray rsync-down scripts/cluster.yaml '{where}/{shown}' ./ray_results/   (a ray up cluster)"
    return (
        f"submitted job {job_id} to {address}. With RAY_AUTH_MODE=token and the same token as here:\n"
        f"  follow:  ray job logs -f {job_id} --address {address}\n"
        f"  status:  ray job status {job_id} --address {address}\n"
        f"  stop:    ray job stop {job_id} --address {address}\n"
        f"Results: {where}/{name or '<newest experiment>'} on the cluster; the job log ends with the best trial.\n"
        f"  fetch:   {fetch}\n"
        f"  report:  python -m analysis ./ray_results/{shown} --out reports/{shown}\n"
        f"  resume:  scripts/submit.sh --name {shown} [same flags]   (after a driver crash or ray job stop)"
    )
