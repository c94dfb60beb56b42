"""One driver per experiment: ``STORAGE/NAME/.driver.lock``, a ``filelock.FileLock`` held while the driver runs.

Two searches writing one experiment (the same ``--name`` and ``--storage-path``) would interleave Tune's state
files and trial folders. The lock is the operating system's (``flock``): a killed driver's lock is released
with its process, so ``--resume`` just takes it. The file also holds the driver's pid, host and start date,
which is what a refused second driver is told.

URI storage (``s3://``, ``gs://``) cannot hold a file lock, so no lock is taken there: run one driver
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

import filelock

from tune_mlp import storage
from tune_mlp.errors import UserInputError

LOCK_NAME = ".driver.lock"


def _holder(lock: Path) -> dict[str, object]:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}  # a driver killed between taking the lock and writing it


def acquire(experiment: Path) -> filelock.FileLock:
    """Take the experiment's lock, or a UserInputError naming the driver that holds it."""
    path = experiment / LOCK_NAME
    experiment.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = _holder(path)
        where = f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        fix = (
            "wait for it, stop it, or use another --name"
            if holder.get("host") == socket.gethostname()
            else f"wait for it or stop it; if it is gone, delete {path}"
        )
        raise UserInputError(
            f"{experiment} is being run by another driver ({where}; lock {path}): {fix}"
        ) from None
    before = _holder(path)
    if before.get("pid"):  # the lock was free, so the driver that wrote this is gone
        where = "this host" if before.get("host") == socket.gethostname() else before.get("host")
        print(f"note: took over the stale lock {path} (pid {before['pid']} is not running on {where})", flush=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    path.write_text(json.dumps(me))  # the same inode: the lock stays held
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
    path = experiment / LOCK_NAME
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still held: no other driver wrote it
        lock.release()
        for folder in created:  # a run that stopped before writing anything leaves no trace
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: the experiment was written
