"""W&B logging of a search's trials: one logging actor and one wandb process for the whole search.

Ray's ``WandbLoggerCallback`` (2.60) starts two actors per trial (a logger and its queue), each logger with
a wandb process of its own, all on the head node: at 32 slots with W&B offline, 200 one-second trials left
60 wandb processes and 13 GB behind after 871 s, 68 trials done (``scripts/bench_scale.py``). wandb runs
many runs in one process (``wandb.init(reinit="create_new")``), so one actor, ``WandbHub``, holds a run
per running trial and finishes it when the trial ends: the head node's cost follows the running trials,
not the trials so far. What is logged, and where (``TRIAL/wandb/offline-run-*``), is what Ray's callback
logs: the result's numbers, the config, the group, trial id and name.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S = 1800  # Ray's DEFAULT_SYNC_TIMEOUT: how long the search's end waits for runs to finish uploading


class WandbHub:
    """The logging actor: one wandb run per running trial, all in this process (and its one wandb service)."""

    def __init__(self) -> None:
        import wandb

        self._wandb = wandb
        self._runs: dict[str, tuple[Any, set[str], set[str]]] = {}

    def start(self, trial_id: str, logdir: str, exclude: list[str], to_config: list[str],
              init_kwargs: dict[str, Any]) -> None:  # fmt: skip
        if trial_id in self._runs:  # a retried trial keeps its run
            return
        kwargs = {key: value for key, value in init_kwargs.items() if key != "reinit"}
        kwargs["config"] = dict(kwargs.get("config") or {})
        os.makedirs(logdir, exist_ok=True)
        run = self._wandb.init(dir=logdir, reinit="create_new", **kwargs)
        run.config.update({"trial_log_path": logdir}, allow_val_change=True)
        self._runs[trial_id] = (run, set(exclude), set(to_config))

    def log(self, trial_id: str, result: dict[str, Any]) -> None:
        """What Ray's ``_WandbLoggingActor`` logs of one result: its numbers, and the auto-config keys as config."""
        from ray.air.integrations.wandb import _is_allowed_type
        from ray.tune.utils import flatten_dict

        if trial_id not in self._runs:
            return
        run, exclude, to_config = self._runs[trial_id]
        config_update = dict(result.get("config", {}))
        log = {}
        for key, value in flatten_dict(result, delimiter="/").items():
            if any(key == item or key.startswith(item + "/") for item in exclude):
                continue
            if any(key == item or key.startswith(item + "/") for item in to_config):
                config_update[key] = value
            elif _is_allowed_type(value):
                log[key] = value
        config_update.pop("callbacks", None)
        run.config.update(config_update, allow_val_change=True)
        run.log(log, step=log.get("training_iteration"))

    def finish(self, trial_id: str) -> None:
        entry = self._runs.pop(trial_id, None)
        if entry:
            entry[0].finish()

    def close(self) -> int:
        """Finish every run still open; returns how many there were."""
        open_runs = list(self._runs)
        for trial_id in open_runs:
            self.finish(trial_id)
        return len(open_runs)


def is_local(trial: Any) -> bool:
    """Whether the trial's results are on a local file system (else a bucket)."""
    import pyarrow.fs

    return isinstance(trial.storage.storage_filesystem, pyarrow.fs.LocalFileSystem)


def _run_dir(trial: Any) -> str:
    """Where a trial's run is written: its folder in the results when they are local. Not Tune's staging folder
    (``trial.local_path``): Tune copies that to storage at snapshots, the last one before the runs finish."""
    return trial.path if is_local(trial) else trial.local_path


def _upload_runs(trials: list[Any]) -> None:
    """Results in a bucket: copy the finished runs up from the driver's staging folders (after Tune's last sync)."""
    import pyarrow.fs

    for trial in trials:
        local = os.path.join(trial.local_path, "wandb")
        if is_local(trial) or not os.path.isdir(local):
            continue
        try:
            pyarrow.fs.copy_files(local, f"{trial.path}/wandb", source_filesystem=pyarrow.fs.LocalFileSystem(),
                                  destination_filesystem=trial.storage.storage_filesystem)  # fmt: skip
        except OSError as error:
            logger.warning("W&B: could not copy %s to the results: %s", local, error)


def wandb_logger_callback(**kwargs: Any) -> Any:
    """Ray's WandbLoggerCallback (its config, grouping and exclusions) logging through one ``WandbHub`` actor.

    The API key never goes into a runtime env: Ray (2.60) passes it as ``runtime_env={"env_vars":
    {"WANDB_API_KEY": ...}}``, and every node's runtime-env agent writes runtime envs to
    ``runtime_env_agent.log`` in clear text. The hub runs on the driver's node and inherits the key from its
    environment (a local Ray started by the driver), or finds the node's own (``wandb login``, an env var).
    """
    import ray
    from ray.air.integrations.wandb import WandbLoggerCallback, _clean_log
    from ray.air.util.node import _force_on_current_node

    class _HubLogger(WandbLoggerCallback):
        _hub: Any = None
        _trial_ids: set[str]
        _calls: list[Any]  # the starts and finishes not yet seen done: their errors are said

        def _start_logging_actor(self, trial: Any, exclude_results: list[str], **init_kwargs: Any) -> None:
            if self._hub is None:
                self._trial_ids, self._calls = set(), []
                key = os.environ.pop("WANDB_API_KEY", None)
                try:
                    self._hub = ray.remote(num_cpus=0, **_force_on_current_node())(WandbHub).remote()
                finally:
                    if key is not None:
                        os.environ["WANDB_API_KEY"] = key
            if trial.trial_id in self._trial_ids:
                return
            self._trial_ids.add(trial.trial_id)
            self._calls.append(
                self._hub.start.remote(
                    trial.trial_id, _run_dir(trial), exclude_results, self.AUTO_CONFIG_KEYS, init_kwargs
                )  # fmt: skip
            )

        def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
            if self._hub is None or trial.trial_id not in self._trial_ids:
                self.log_trial_start(trial)
            result = _clean_log(result, video_kwargs=self.video_kwargs, image_kwargs=self.image_kwargs)
            self._hub.log.remote(trial.trial_id, result)

        def log_trial_save(self, trial: Any) -> None:
            pass  # checkpoints stay in the experiment (upload_checkpoints is not offered)

        def log_trial_end(self, trial: Any, failed: bool = False) -> None:
            if self._hub is not None and trial.trial_id in self._trial_ids:
                self._trial_ids.discard(trial.trial_id)
                self._calls.append(self._hub.finish.remote(trial.trial_id))
                self._warn_of_failures(timeout=0)

        def _warn_of_failures(self, timeout: float) -> None:
            """Say (once per failure) what a start or finish in the hub raised; the search goes on either way."""
            done, self._calls = ray.wait(self._calls, num_returns=len(self._calls), timeout=timeout)
            for ref in done:
                try:
                    ray.get(ref)
                except Exception as error:
                    logger.warning("W&B: %s", str(error).strip().splitlines()[-1])

        def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
            if self._hub is None:
                return
            try:
                ray.get(self._hub.close.remote(), timeout=self._upload_timeout)
                self._warn_of_failures(timeout=0)
            except Exception as error:  # a W&B failure must not fail a finished search
                logger.warning("W&B: finishing the runs failed: %s", error)
            ray.kill(self._hub)
            self._hub = None
            _upload_runs(trials)

        def __del__(self) -> None:
            pass  # the hub is an actor of this job: it ends with it

    return _HubLogger(**kwargs)
