"""Where experiments live: a local (or NFS) folder or a URI (``s3://``, ``gs://``), asked in one place.

Ray Tune takes either; the few files of our own beside an experiment (``best.json``,
``search.json``) are written and read through pyarrow's filesystems so both work alike.

An ``s3://`` server and its credentials come from the environment, as pyarrow (and so Ray, on every node)
reads them: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) for a server other than AWS,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, or a profile or an instance role. Never in
the URI: Ray writes the storage path into its state files and logs.

Every storage access of ours, and Ray's through ``storage_filesystem``, goes through ``filesystem(path)``. With keys
in the environment, an ``s3://`` path gets one filesystem that holds them, so that ``keys_out_of_environ`` can take
them out of the environment while Tune runs: Tune copies the AWS keys it finds there into every trial actor's
runtime env, which each node's runtime-env agent writes to its log in clear text.
"""

from __future__ import annotations

import fnmatch
import functools
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
AWS_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_held: dict[str, str] = {}  # the keys keys_out_of_environ took out of os.environ, while it holds them


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


class KeyedS3(pyarrow.fs.S3FileSystem):
    """S3 signed with the keys it was given, whose pickle holds none.

    Ray pickles the storage filesystem into ``tuner.pkl`` and the experiment state (both in the bucket) and into
    what it sends to trial actors: pyarrow's own pickle of an S3 filesystem carries its keys. This one unpickles
    as the same server and region with the credentials of the process it lands in (a node's own environment,
    profile or instance role), as Ray's default filesystem for an ``s3://`` URI does.
    """

    def __init__(self, *, region: str, endpoint_override: str | None, **keys: str) -> None:
        super().__init__(region=region, endpoint_override=endpoint_override, **keys)
        self._keyless = functools.partial(pyarrow.fs.S3FileSystem, region=region, endpoint_override=endpoint_override)

    def __reduce__(self) -> tuple:
        return self._keyless, ()

    def __copy__(self) -> KeyedS3:
        return self  # a copy (copy.deepcopy goes through __reduce__) on the driver must keep signing

    def __deepcopy__(self, memo: dict) -> KeyedS3:
        return self


def filesystem(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem of a local path or a URI and the path on it (``bucket/key`` for a URI).

    What Ray takes as ``storage_filesystem`` with that path. An ``s3://`` path with keys in the environment (or
    held by ``keys_out_of_environ``) gets a ``KeyedS3`` with them, one per server, region and keys.
    """
    if not is_uri(path):
        return LOCAL, storage_root(path)
    fs, fs_path = pyarrow.fs.FileSystem.from_uri(str(path).rstrip("/"))  # its errors, its region resolution
    keys = {name: _env(name) for name in AWS_SECRETS}
    if fs.type_name != "s3" or not (keys["AWS_ACCESS_KEY_ID"] and keys["AWS_SECRET_ACCESS_KEY"]):
        return fs, fs_path  # a profile, an instance role, gs://: Ray's default, nothing in the environment to hide
    endpoint = _env("AWS_ENDPOINT_URL_S3") or _env("AWS_ENDPOINT_URL")
    token = keys["AWS_SESSION_TOKEN"] or keys["AWS_SECURITY_TOKEN"]
    return _keyed_s3(fs.region, endpoint, keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"], token), fs_path


@functools.lru_cache(maxsize=8)
def _keyed_s3(region: str, endpoint: str | None, key_id: str, secret: str, token: str | None) -> KeyedS3:
    return KeyedS3(region=region, endpoint_override=endpoint, access_key=key_id, secret_key=secret,
                   session_token=token)  # fmt: skip


@contextmanager
def keys_out_of_environ() -> Iterator[None]:
    """The AWS keys out of ``os.environ`` for the block (``tuner.fit()``), and as they were afterwards.

    Tune reads the environment when it creates its trial actors and copies these into their runtime env (its
    ``class_cache``, Ray 2.60), which each node's runtime-env agent logs in clear text. The driver keeps signing
    with them through ``filesystem``'s ``KeyedS3``, which Tune was given; each node uses its own credentials, as
    without this.
    """
    taken = {name: os.environ.pop(name) for name in AWS_SECRETS if name in os.environ}
    _held.update(taken)
    try:
        yield
    finally:
        for name, value in taken.items():
            _held.pop(name, None)
            os.environ.setdefault(name, value)


def _env(name: str) -> str | None:
    return os.environ.get(name) or _held.get(name)


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
    fs, path = filesystem(experiment)
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
    fs, path = filesystem(experiment)
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
    fs, folder = filesystem(path)
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
            fs, folder = filesystem(uri)
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
        fs, path = filesystem(uri)
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
