"""W&B logging of a search's trials: what Ray's ``WandbLoggerCallback`` logs, through one actor and one wandb process
for the whole search, each run in ``TRIAL/wandb/``, the API key never through Ray (docs/architecture.md says why).

    RunConfig(callbacks=[WandbLoggerCallback(project="tune_mlp", group="my-search")])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from numbers import Number
from typing import Any

import pyarrow.fs
import ray
from ray.tune.logger import LoggerCallback
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

logger = logging.getLogger(__name__)

# A result's keys that describe the trial, not its progress: the run's config gets them (as Ray's callback does).
AUTO_CONFIG_KEYS = ("trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname", "pid", "date")
# Tune's flags, and the config (the run's config already has it): never in the history.
NOT_LOGGED = ("done", "should_checkpoint", "config")


def plain(value: Any) -> Any:
    """A config value as W&B stores it: JSON's types, a numpy scalar as its Python number, anything else as text."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(item) for item in value]
    if value is None or isinstance(value, str):
        return value
    return str(value) if (number := _number(value)) is None else number


def _number(value: Any) -> int | float | bool | None:
    """A loggable number (a numpy scalar or one-element array as its Python value), else None."""
    if getattr(value, "size", None) == 1 and hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, Number) and not isinstance(value, complex) else None


def _under(key: str, names: Iterable[str]) -> bool:
    return any(key == name or key.startswith(name + "/") for name in names)


def _flat(tree: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


def loggable(result: dict[str, Any], excludes: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Tune result as W&B takes it: (the history row: every number, nested keys joined by "/"; the config update:
    ``run_config`` and ``AUTO_CONFIG_KEYS``). Excluded keys are in neither; other strings are dropped, as Ray does."""
    row: dict[str, Any] = {}
    config = run_config(result.get("config") or {}, excludes)
    for key, value in _flat(result):
        if _under(key, NOT_LOGGED) or _under(key, excludes):
            continue
        if _under(key, AUTO_CONFIG_KEYS):
            config[key] = plain(value)
        elif (number := _number(value)) is not None:
            row[key] = number
    return row, config


def run_config(config: dict[str, Any], excludes: Sequence[str] = ()) -> dict[str, Any]:
    """A trial's config as its run's config: the hyperparameters (no callbacks), plain values."""
    return {key: value for key, value in plain(config).items() if key != "callbacks" and not _under(key, excludes)}


class WandbHub:
    """The logging actor: one wandb run per running trial, all in this process (and its one wandb service)."""

    def __init__(self, mode: str | None = None) -> None:
        if mode:  # the driver's choice (online, offline), whatever environment this worker was started with
            os.environ["WANDB_MODE"] = mode
        import wandb

        self._wandb = wandb
        self._runs: dict[str, Any] = {}

    def start(self, trial_id: str, run_dir: str, init_kwargs: dict[str, Any]) -> None:
        if trial_id in self._runs:  # a trial restarted while its run is open keeps its run
            return
        os.makedirs(run_dir, exist_ok=True)
        run = self._wandb.init(dir=run_dir, reinit="create_new", **init_kwargs)
        run.config.update({"trial_log_path": run_dir}, allow_val_change=True)
        self._runs[trial_id] = run

    def log(self, trial_id: str, row: dict[str, Any], config: dict[str, Any]) -> None:
        if (run := self._runs.get(trial_id)) is not None:
            run.config.update(config, allow_val_change=True)
            run.log(row, step=row.get("training_iteration"))

    def finish(self, trial_id: str) -> None:
        if (run := self._runs.pop(trial_id, None)) is not None:
            run.finish()

    def close(self) -> int:
        """Finish the open runs and wait until wandb has written (online: uploaded) them; returns how many were open."""
        open_runs = list(self._runs)
        for trial_id in open_runs:
            self.finish(trial_id)
        self._wandb.teardown()  # run.finish() returns before the service has written; a killed actor never exits
        return len(open_runs)


class WandbLoggerCallback(LoggerCallback):
    """Each trial a W&B run (named after the trial, id the trial's id) in ``project`` and ``group`` (default: the
    experiment's name). ``excludes``: result and config keys not logged; ``upload_timeout``: seconds the search's
    end waits for the runs to be written (online: uploaded), as Ray's; the rest goes to ``wandb.init``."""

    def __init__(self, project: str | None = None, group: str | None = None, excludes: Sequence[str] = (),
                 upload_timeout: float = 1800, **init_kwargs: Any) -> None:  # fmt: skip
        self.project, self.group, self.excludes = project, group, list(excludes)
        self.upload_timeout, self.init_kwargs = upload_timeout, init_kwargs
        self.__setstate__({})

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the experiment: the hub is this driver's, a restored one starts its own."""
        return {key: value for key, value in self.__dict__.items() if key not in ("_hub", "_started", "_pending")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._hub: Any = None
        self._started: set[str] = set()  # trials whose run is open
        self._pending: list[Any] = []  # the hub's starts and finishes not yet seen done: their errors are said

    def log_trial_start(self, trial: Any) -> None:
        if self._hub is None:  # on the driver's node: beside the trial folders, with this node's W&B key
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            self._hub = ray.remote(num_cpus=0, scheduling_strategy=here)(WandbHub).remote(os.environ.get("WANDB_MODE"))
        if trial.trial_id in self._started:
            return
        self._started.add(trial.trial_id)
        init_kwargs = {"id": trial.trial_id, "name": str(trial), "resume": False, "allow_val_change": True,
                       "group": self.group or trial.experiment_dir_name, "project": self.project,
                       "config": run_config(trial.config, self.excludes), **self.init_kwargs}  # fmt: skip
        # Local results: the run goes in the trial's folder, not Tune's staging folder (last synced before it ends).
        run_dir = trial.path if is_local(trial) else trial.local_path
        self._pending.append(self._hub.start.remote(trial.trial_id, run_dir, init_kwargs))

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial.trial_id not in self._started:
            self.log_trial_start(trial)
        self._hub.log.remote(trial.trial_id, *loggable(result, self.excludes))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        if trial.trial_id in self._started:
            self._started.remove(trial.trial_id)
            self._pending.append(self._hub.finish.remote(trial.trial_id))
            self._warn_of_failures()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if self._hub is None:
            return
        try:
            ray.get(self._hub.close.remote(), timeout=self.upload_timeout)
            self._warn_of_failures()
        except Exception as error:  # a W&B failure must not fail a finished search
            logger.warning("W&B: finishing the runs failed: %s", error)
        ray.kill(self._hub)
        self.__setstate__({})
        for trial in trials:  # results in a bucket: the finished runs go up from the staging folders after Tune's sync
            local = os.path.join(trial.local_path, "wandb")
            if is_local(trial) or not os.path.isdir(local):
                continue
            try:
                pyarrow.fs.copy_files(local, f"{trial.path}/wandb", source_filesystem=pyarrow.fs.LocalFileSystem(),
                                      destination_filesystem=trial.storage.storage_filesystem)  # fmt: skip
            except OSError as error:
                logger.warning("W&B: could not copy %s to the results: %s", local, error)

    def _warn_of_failures(self) -> None:
        """Say (once per failure) what a start or finish in the hub raised; the search goes on either way."""
        if not self._pending:
            return
        done, self._pending = ray.wait(self._pending, num_returns=len(self._pending), timeout=0)
        for ref in done:
            try:
                ray.get(ref)
            except Exception as error:
                logger.warning("W&B: %s", str(error).strip().splitlines()[-1])


def is_local(trial: Any) -> bool:
    """Whether the trial's results are on a local file system (else a bucket)."""
    return isinstance(trial.storage.storage_filesystem, pyarrow.fs.LocalFileSystem)
