"""W&B: online with an API key, offline (and said so once) without one. No W&B or Ray import here."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

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
