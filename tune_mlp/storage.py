"""Where experiments live: a local (or NFS) folder or a URI (``s3://``, ``gs://``), asked in one place.

Ray Tune takes either; the few files of our own beside an experiment (``best.json``,
``search.json``) are written and read through pyarrow's filesystems so both work alike.

An ``s3://`` server and its credentials come from the environment, as pyarrow (and so Ray, on every node)
reads them: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for a server other than AWS,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, or a profile or an instance role. Never in
the URI: Ray writes the storage path into its state files and logs.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs

from tune_mlp.errors import UserInputError

LOCAL = pyarrow.fs.LocalFileSystem()


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
    """A local storage root must be a folder we can write (or creatable), a URI a bucket we reach: fail before Ray."""
    if is_uri(root):
        check_bucket(root)
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
    data = read_bytes(experiment, filename)
    return None if data is None else data.decode()


def read_bytes(experiment: str, filename: str) -> bytes | None:
    """The file's bytes, or None when it is not there."""
    if not is_uri(experiment):
        path = Path(experiment, filename)
        return path.read_bytes() if path.is_file() else None
    fs, path = pyarrow.fs.FileSystem.from_uri(experiment)
    target = f"{path.rstrip('/')}/{filename}"
    if fs.get_file_info(target).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(target) as source:
        return source.read()


def to_uri(filesystem: pyarrow.fs.FileSystem, path: str) -> str:
    """A path as Ray returns it (``bucket/key`` on its filesystem) as the URI a user gives back (``s3://bucket/key``)."""
    scheme = {"s3": "s3", "gcs": "gs"}.get(filesystem.type_name)
    return f"{scheme}://{path.lstrip('/')}" if scheme and not is_uri(path) else path


def is_experiment(path: str) -> bool:
    """Whether ``path`` (a folder or a URI) holds a Ray Tune experiment (``experiment_state-*.json``)."""
    return any(fnmatch.fnmatch(name, "experiment_state-*.json") for name in file_names(path))


def file_names(path: str) -> list[str]:
    """The names of the files directly in ``path`` (a folder or a URI); none if it does not exist."""
    if not is_uri(path):
        folder = Path(path).expanduser()
        return [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    fs, folder = pyarrow.fs.FileSystem.from_uri(path)
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(folder.rstrip("/"), allow_not_found=True))
    except OSError as error:
        raise StorageError(f"{path}: {_reason(error)}") from None
    return [info.base_name for info in infos if info.type == pyarrow.fs.FileType.File]


@contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """The folder at ``uri`` downloaded into a temporary folder, removed at the end of the block."""
    with tempfile.TemporaryDirectory(prefix="tune_mlp-") as local:
        try:
            fs, folder = pyarrow.fs.FileSystem.from_uri(uri)
            found = fs.get_file_info(folder).type == pyarrow.fs.FileType.Directory
            if found:
                pyarrow.fs.copy_files(folder, local, source_filesystem=fs, destination_filesystem=LOCAL)
        except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
            raise StorageError(f"{uri}: {_reason(error)}") from None
        if not found:
            raise StorageError(f"{uri} does not exist (or is not a folder)")
        yield Path(local)


def check_bucket(uri: str) -> None:
    """A storage URI whose bucket exists and answers, with credentials from the environment: one line if not."""
    scheme, _, rest = uri.partition("://")
    if "?" in rest or "@" in rest.split("/", 1)[0]:
        shown = f"{scheme}://{rest.split('?')[0].split('@')[-1]}"  # never echo a secret
        raise StorageError(
            f"--storage-path {shown}: give the endpoint and credentials in the environment "
            "(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), not in the URI: Ray writes the storage "
            "path into its state files and logs"
        )
    if scheme == "s3" and not aws_credentials_found():
        raise StorageError(
            f"--storage-path {uri}: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE) in the environment of the driver and of every Ray node, or run on an instance role"
        )
    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        bucket = path.split("/", 1)[0]
        found = fs.get_file_info(bucket).type
    except (OSError, ValueError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise StorageError(f"--storage-path {uri}: {_reason(error)}") from None
    if found == pyarrow.fs.FileType.NotFound:
        raise StorageError(
            f"--storage-path {uri}: bucket {bucket} does not exist{_at_endpoint()}: create it "
            f"(aws s3 mb {scheme}://{bucket}) or fix the name"
        )


def aws_credentials_found() -> bool:
    """Whether AWS's default credential chain (which pyarrow follows) has a source here, without asking AWS.

    Without one pyarrow sends unsigned requests: a search would run and fail at its first checkpoint.
    """
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return True
    files = [env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), env.get("AWS_CONFIG_FILE", "~/.aws/config")]
    if any(Path(file).expanduser().is_file() for file in files):
        return True
    return env.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true" and _instance_role()


def _instance_role() -> bool:
    """An EC2 instance metadata service answers (an instance profile's credentials come from it)."""
    request = urllib.request.Request(
        "http://169.254.169.254/latest/api/token", method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=1):
            return True
    except (OSError, urllib.error.URLError):
        return False


def _at_endpoint() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f" at {endpoint}" if endpoint else ""


def _reason(error: Exception) -> str:
    """pyarrow's long AWS error as what it means and what to do."""
    text = str(error)
    if "NETWORK_CONNECTION" in text or "Could not connect" in text or "Could not resolve" in text:
        where = _at_endpoint().removeprefix(" at ") or "its default endpoint"
        return f"cannot reach the storage server ({where}): start it, or set AWS_ENDPOINT_URL to its address"
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "Forbidden" in text or "InvalidAccessKeyId" in text:
        return f"access denied{_at_endpoint()}: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    return text
