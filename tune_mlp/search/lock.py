"""One driver per experiment: a lock file beside the experiment, ``STORAGE/NAME/.driver.lock``.

Two searches writing one experiment (the same ``--name`` and ``--storage-path``) would interleave Tune's state
files and trial folders. The lock holds the driver's pid, host, process start time and start date; it is
created atomically (``O_EXCL``) before ``Tuner.fit`` and removed when the driver ends. A lock left by a
killed driver is stale when its pid is not running on this host (or runs a different process, told by its
start time): a new driver (``--resume``) takes it over and says so. A lock from another host cannot be
checked from here: the message says which file to delete once that driver is gone.

URI storage (``s3://``, ``gs://``) has no atomic create-if-absent, so no lock is taken there: run one driver
per experiment name (``ray job list`` shows the running ones); docs/cluster.md says so.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tune_mlp import storage
from tune_mlp.errors import UserInputError

LOCK_NAME = ".driver.lock"


class ExperimentLockedError(UserInputError):
    """Another driver runs this experiment."""


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), or None if it is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22; comm may hold spaces


def this_driver() -> dict[str, object]:
    pid = os.getpid()
    return {
        "pid": pid,
        "host": socket.gethostname(),
        "start_ticks": process_start_time(pid),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def stale_reason(holder: dict[str, object]) -> str | None:
    """Why the lock's driver is surely gone, or None when it may still run (or runs on another host)."""
    if holder.get("host") != socket.gethostname():
        return None
    pid = int(holder.get("pid", -1))
    start = process_start_time(pid)
    if start is None:
        return f"pid {pid} is not running on this host"
    if holder.get("start_ticks") is not None and start != holder["start_ticks"]:
        return f"pid {pid} on this host is now another process (its start time differs)"
    return None


def _read(lock: Path) -> dict[str, object]:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}  # half-written by a driver killed between create and write: no pid, so stale


def _create(lock: Path, holder: dict[str, object]) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        json.dump(holder, out)
    return True


def acquire(experiment: Path) -> Path:
    """Take the experiment's lock or raise ExperimentLockedError naming the driver that holds it."""
    lock = experiment / LOCK_NAME
    me = this_driver()
    experiment.mkdir(parents=True, exist_ok=True)
    if _create(lock, me):
        return lock
    holder = _read(lock)
    reason = stale_reason(holder) if holder else "the lock file is empty"
    if reason is None:
        where = f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        fix = (
            "wait for it, stop it, or use another --name"
            if holder.get("host") == me["host"]
            else f"wait for it or stop it; if it is gone, delete {lock}"
        )
        raise ExperimentLockedError(f"{experiment} is being run by another driver ({where}; lock {lock}): {fix}")
    lock.unlink(missing_ok=True)
    if not _create(lock, me):  # another driver took it in between
        return acquire(experiment)
    print(f"note: took over the stale lock {lock} ({reason})", flush=True)
    return lock


@contextmanager
def driver_lock(storage_root: str, name: str) -> Iterator[Path | None]:
    """Hold ``STORAGE/NAME/.driver.lock`` for the block (nothing for URI storage: see the module doc)."""
    if storage.is_uri(storage_root):
        yield None
        return
    experiment = Path(storage_root, name)
    created = [folder for folder in (experiment, *experiment.parents) if not folder.exists()]
    lock = acquire(experiment)
    try:
        yield lock
    finally:
        if _read(lock).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
        for folder in created:  # a run that stopped before writing anything leaves no trace
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: the experiment was written
