"""W&B: online with an API key, offline (and said so once) without one."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

DEFAULT_PROJECT = "tune_mlp"


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def configure_wandb_mode(offline_runs: str = "<run dir>/wandb/offline-run-*", say: bool = True) -> str:
    """Pick the mode before any W&B code (or Ray worker) starts; the key itself is never copied anywhere."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if has_api_key():
        return "online"
    os.environ["WANDB_MODE"] = "offline"
    if say:
        print(
            "W&B: no API key found (WANDB_API_KEY or `wandb login`), logging offline. "
            f"Upload later with `wandb sync {offline_runs}`.",
            flush=True,
        )
    return "offline"


def wandb_logger_callback(**kwargs: Any) -> Any:
    """Ray's WandbLoggerCallback, minus its copy of WANDB_API_KEY into the logging actors' runtime_env.

    Ray (2.60) passes the key as ``runtime_env={"env_vars": {"WANDB_API_KEY": ...}}``, and every node's
    runtime-env agent writes runtime envs to ``runtime_env_agent.log`` in clear text. The logging actors run on
    the driver's node and inherit the key from its environment instead (a local Ray started by the driver), or
    find the node's own (``wandb login``, an env var set where the node starts).
    """
    from ray.air.integrations.wandb import WandbLoggerCallback  # Ray: only for searches, not `tune_mlp.train`

    class _KeyByInheritance(WandbLoggerCallback):
        def _start_logging_actor(self, *args: Any, **kwargs: Any) -> None:
            key = os.environ.pop("WANDB_API_KEY", None)
            try:
                super()._start_logging_actor(*args, **kwargs)
            finally:
                if key is not None:
                    os.environ["WANDB_API_KEY"] = key

    return _KeyByInheritance(**kwargs)
