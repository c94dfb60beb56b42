"""Where experiments live: a local (or NFS) folder or a URI (``s3://``, ``gs://``), asked in one place.

Ray Tune takes either; the few files of our own beside an experiment (``best.json``,
``search.json``) are written and read through pyarrow's filesystems so both work alike.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow.fs

from tune_mlp.errors import UserInputError


class StorageError(UserInputError, ValueError):
    """A storage path that cannot hold experiments (a file, not writable)."""


def is_uri(path: str) -> bool:
    return "://" in str(path)


def storage_root(path: str) -> str:
    """Ray wants an absolute local path or a URI."""
    if is_uri(path):
        return str(path).rstrip("/")
    return str(Path(path).expanduser().resolve())


def experiment_path(root: str, name: str) -> str:
    return f"{storage_root(root)}/{name}"


def check_writable(root: str) -> None:
    """A local storage root must be a folder we can write (or creatable): fail before Ray starts."""
    if is_uri(root):
        return
    path = Path(storage_root(root))
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise StorageError(f"--storage-path {root}: {existing} is a file, not a folder; give a folder for the results")
    if existing is not None and not _writable(existing):
        raise StorageError(f"--storage-path {root}: {existing} is not writable; give a folder you can write to")


def _writable(folder: Path) -> bool:
    """Mode bits first; then a real try, since root passes os.access everywhere (a read-only mount, /proc)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        tempfile.TemporaryDirectory(dir=folder, prefix=".tune_mlp-probe-").cleanup()
    except OSError:
        return False
    return True


def write_text(experiment: str, filename: str, text: str) -> None:
    """``experiment/filename`` on a local path or a URI alike."""
    if not is_uri(experiment):
        Path(experiment).mkdir(parents=True, exist_ok=True)
        Path(experiment, filename).write_text(text)
        return
    fs, path = pyarrow.fs.FileSystem.from_uri(experiment)
    with fs.open_output_stream(f"{path.rstrip('/')}/{filename}") as out:
        out.write(text.encode())


def read_text(experiment: str, filename: str) -> str | None:
    """The file's text, or None when it is not there."""
    if not is_uri(experiment):
        path = Path(experiment, filename)
        return path.read_text() if path.is_file() else None
    fs, path = pyarrow.fs.FileSystem.from_uri(experiment)
    target = f"{path.rstrip('/')}/{filename}"
    if fs.get_file_info(target).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(target) as source:
        return source.read().decode()
