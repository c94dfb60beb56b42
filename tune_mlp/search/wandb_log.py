"""W&B logging of a search's trials (Ray's ``WandbLoggerCallback``)."""

from __future__ import annotations

import os
from typing import Any


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
