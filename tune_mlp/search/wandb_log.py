"""W&B logging of a search's trials: one logging actor and one wandb process for the whole search.

    RunConfig(callbacks=[WandbLoggerCallback(project="tune_mlp", group="my-search")])

Ray's own ``WandbLoggerCallback`` starts two actors and a wandb process per trial, all on the head node (at 32 slots,
200 one-second trials left 60 wandb processes and 13 GB behind; ``scripts/bench_scale.py``). wandb runs many runs in
one process (``reinit="create_new"``), so ours, a ``LoggerCallback`` on Tune's public interface, drives one actor,
``WandbHub``, holding a run per running trial. What is logged is what Ray's callback logs; the run's files go to
``TRIAL/wandb/``. The API key never travels through Ray (Ray writes runtime envs to every node's log in clear
text): the hub runs on the driver's node and finds the key there; only ``WANDB_MODE`` is handed to it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from numbers import Number
from typing import Any

from ray.tune.logger import LoggerCallback

logger = logging.getLogger(__name__)

UPLOAD_TIMEOUT_S = 1800  # as Ray's callback: how long the search's end waits for the runs to finish uploading

# A result's keys that describe the trial, not its progress: the run's config gets them (as Ray's callback does).
AUTO_CONFIG_KEYS = ("trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname", "pid", "date")
# Tune's flags, and the config (the run's config already has it): never in the history.
NOT_LOGGED = ("done", "should_checkpoint", "config")


def plain(value: Any) -> Any:
    """A config value as W&B stores it: JSON's types, a numpy scalar as its Python number, anything else as text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(item) for item in value]
    number = _number(value)
    return str(value) if number is None else number


def _number(value: Any) -> int | float | bool | None:
    """A loggable number (a numpy scalar or one-element array as its Python value), else None."""
    if getattr(value, "size", None) == 1 and hasattr(value, "item"):  # numpy scalars and one-element arrays
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    return value if isinstance(value, Number) and not isinstance(value, complex) else None


def _under(key: str, names: Iterable[str]) -> bool:
    return any(key == name or key.startswith(name + "/") for name in names)


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
    return {key: value for key, value in plain(config).items()
            if key != "callbacks" and not _under(key, excludes)}  # fmt: skip


def _flat(tree: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


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
        run = self._runs.get(trial_id)
        if run is not None:
            run.config.update(config, allow_val_change=True)
            run.log(row, step=row.get("training_iteration"))

    def finish(self, trial_id: str) -> None:
        run = self._runs.pop(trial_id, None)
        if run is not None:
            run.finish()

    def close(self) -> int:
        """Finish every open run and wait until wandb has written (online: uploaded) them; returns how many were open.

        ``run.finish()`` returns before wandb's service has written the run; ``wandb.teardown()`` waits, which
        otherwise runs at the process's exit, which a killed actor never reaches.
        """
        open_runs = list(self._runs)
        for trial_id in open_runs:
            self.finish(trial_id)
        self._wandb.teardown()
        return len(open_runs)


class WandbLoggerCallback(LoggerCallback):
    """Each trial a W&B run (named after the trial, id the trial's id) in ``project`` and ``group`` (default: the
    experiment's name), logged through one ``WandbHub`` actor on the driver's node.

    ``excludes``: result and config keys not logged. ``upload_timeout``: seconds the search's end waits for the
    runs to finish (and, online, upload). Other keyword arguments go to ``wandb.init`` (``entity``, ``tags``, ...).
    """

    def __init__(self, project: str | None = None, group: str | None = None, excludes: Sequence[str] = (),
                 upload_timeout: float = UPLOAD_TIMEOUT_S, **init_kwargs: Any) -> None:  # fmt: skip
        self.project, self.group, self.excludes = project, group, list(excludes)
        self.upload_timeout, self.init_kwargs = upload_timeout, init_kwargs
        self._forget_hub()

    def _forget_hub(self) -> None:
        self._hub: Any = None
        self._started: set[str] = set()  # trials whose run is open
        self._pending: list[Any] = []  # the starts and finishes not yet seen done: their errors are said

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its callbacks with the experiment: the hub is this driver's, a restored one starts its own."""
        return {key: value for key, value in self.__dict__.items() if key not in ("_hub", "_started", "_pending")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forget_hub()

    def log_trial_start(self, trial: Any) -> None:
        if self._hub is None:
            self._hub = _start_hub()
        if trial.trial_id in self._started:
            return
        self._started.add(trial.trial_id)
        init_kwargs = {
            "id": trial.trial_id,
            "name": str(trial),
            "resume": False,
            "allow_val_change": True,
            "group": self.group or trial.experiment_dir_name,
            "project": self.project,
            "config": run_config(trial.config, self.excludes),
            **self.init_kwargs,
        }
        self._pending.append(self._hub.start.remote(trial.trial_id, _run_dir(trial), init_kwargs))

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        if trial.trial_id not in self._started:
            self.log_trial_start(trial)
        row, config = loggable(result, self.excludes)
        self._hub.log.remote(trial.trial_id, row, config)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        if trial.trial_id in self._started:
            self._started.discard(trial.trial_id)
            self._pending.append(self._hub.finish.remote(trial.trial_id))
            self._warn_of_failures(timeout=0)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        import ray

        if self._hub is None:
            return
        try:
            ray.get(self._hub.close.remote(), timeout=self.upload_timeout)
            self._warn_of_failures(timeout=0)
        except Exception as error:  # a W&B failure must not fail a finished search
            logger.warning("W&B: finishing the runs failed: %s", error)
        ray.kill(self._hub)
        self._forget_hub()
        _upload_runs(trials)

    def _warn_of_failures(self, timeout: float) -> None:
        """Say (once per failure) what a start or finish in the hub raised; the search goes on either way."""
        import ray

        if not self._pending:
            return
        done, self._pending = ray.wait(self._pending, num_returns=len(self._pending), timeout=timeout)
        for ref in done:
            try:
                ray.get(ref)
            except Exception as error:
                logger.warning("W&B: %s", str(error).strip().splitlines()[-1])


def _start_hub() -> Any:
    """The hub, on this (the driver's) node: its runs are written where the driver's trial folders are, and it
    inherits this node's W&B key. No CPU of its own: it waits on its wandb service."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    hub = ray.remote(num_cpus=0, scheduling_strategy=here)(WandbHub)
    return hub.remote(os.environ.get("WANDB_MODE"))


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

