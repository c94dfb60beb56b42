"""One driver per experiment: ``STORAGE/NAME/.driver.lock``, a ``filelock.FileLock`` (the system's ``flock``: a killed
driver's lock goes with its process, so ``--resume`` just takes it) holding the driver's pid, host and start date.

URI storage (``s3://``, ``gs://``) cannot hold a file lock, so none is taken there (docs/cluster.md).
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
    host = socket.gethostname()
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = _holder(path)
        where = f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
        fix = f"wait for it or stop it; if it is gone, delete {path}"
        if holder.get("host") == host:
            fix = "wait for it, stop it, or use another --name"
        raise UserInputError(f"{experiment} is being run by another driver ({where}; lock {path}): {fix}") from None
    before = _holder(path)
    if before.get("pid"):  # the lock was free, so the driver that wrote this is gone
        where = "this host" if before.get("host") == host else before.get("host")
        print(f"note: took over the stale lock {path} (pid {before['pid']} is not running on {where})", flush=True)
    path.write_text(json.dumps({"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}))
    return lock  # the same inode was written: the lock stays held


@contextmanager
def driver_lock(storage_root: str, name: str) -> Iterator[Path | None]:
    """Hold ``STORAGE/NAME/.driver.lock`` for the block (nothing for URI storage)."""
    if storage.is_uri(storage_root):
        yield None
        return
    experiment = Path(storage_root, name)
    created = [folder for folder in (experiment, *experiment.parents) if not folder.exists()]
    lock = acquire(experiment)
    try:
        yield experiment / LOCK_NAME
    finally:
        (experiment / LOCK_NAME).unlink(missing_ok=True)  # while still held: no other driver wrote it
        lock.release()
        for folder in created:  # a run that stopped before writing anything leaves no trace
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: the experiment was written
