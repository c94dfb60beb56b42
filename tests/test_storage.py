"""tune_mlp.storage's S3 filesystem: it signs with the driver's keys while they are out of the environment, and
its pickle (what Ray writes to tuner.pkl and the experiment state, and sends to trials) carries none.

The requests go to a real HTTP server on 127.0.0.1 in this process, which records the Authorization header that
pyarrow's S3 client sends: ``Credential=<key id>/...`` when it signs, nothing when it has no credentials.
"""

from __future__ import annotations

import copy
import http.server
import os
import pickle
import threading
from collections.abc import Iterator

import pyarrow.fs
import pytest

from tune_mlp import storage

KEY_ID = "AKIATESTSTORAGE0001"
SECRET = "storage-test-secret-0123456789abcdef"


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(404)
        self.end_headers()

    do_GET = do_HEAD  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 endpoint that records what each request was signed with; the keys in the environment."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_REGION": "eu-west-1", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)  # no profile of this machine's to fall back on
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def _signed_with(fs: pyarrow.fs.FileSystem) -> list[str]:
    """The key ids (or "unsigned") of the requests one ``get_file_info`` sends."""
    _Recorder.seen.clear()
    fs.get_file_info("bucket/key")
    assert _Recorder.seen, "no request reached the server"
    return sorted({auth.split("Credential=")[1].split("/")[0] if auth else "unsigned" for auth in _Recorder.seen})


def test_s3_filesystem_signs_with_the_keys_held_out_of_the_environment(endpoint: str) -> None:
    fs, path = storage.filesystem("s3://bucket/ray_results/name/")
    assert (type(fs), path, fs.region, fs.type_name) == (storage.KeyedS3, "bucket/ray_results/name", "eu-west-1", "s3")
    assert storage.filesystem("s3://bucket/other")[0] is fs  # one filesystem for the server, region and keys
    with storage.keys_out_of_environ():
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(os.environ)
        assert storage.filesystem("s3://bucket/x")[0] is fs  # our own reads and writes meanwhile: the same one
        assert _signed_with(fs) == [KEY_ID]
        plain, _ = pyarrow.fs.FileSystem.from_uri("s3://bucket/key")
        assert _signed_with(plain) == ["unsigned"]  # what the driver would send without it
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == (KEY_ID, SECRET)


def test_its_pickle_carries_no_key_and_lands_on_the_same_server(endpoint: str) -> None:
    fs, _ = storage.filesystem("s3://bucket/ray_results")
    data = pickle.dumps(fs)
    assert SECRET.encode() not in data and KEY_ID.encode() not in data
    assert SECRET.encode() in pickle.dumps(pyarrow.fs.S3FileSystem(access_key=KEY_ID, secret_key=SECRET))  # pyarrow's
    landed = pickle.loads(data)
    assert type(landed) is pyarrow.fs.S3FileSystem and landed.region == "eu-west-1"
    assert _signed_with(landed) == [KEY_ID]  # the credentials of where it lands (here the environment's)...
    with storage.keys_out_of_environ():
        assert _signed_with(landed) == ["unsigned"]  # ...not the driver's: a node without them has none
        assert _signed_with(fs) == [KEY_ID]
    assert copy.copy(fs) is fs and copy.deepcopy({"fs": fs})["fs"] is fs  # a copy on the driver keeps signing


def test_other_paths_keep_their_default_filesystem(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert storage.filesystem(str(tmp_path / "results")) == (storage.LOCAL, str(tmp_path / "results"))
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # a profile or an instance role: nothing in the environment to hide
    fs, path = storage.filesystem("s3://bucket/ray_results")
    assert type(fs) is pyarrow.fs.S3FileSystem and path == "bucket/ray_results"


def test_keys_out_of_environ_restores_them_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(KeyboardInterrupt), storage.keys_out_of_environ():
        assert "AWS_SECRET_ACCESS_KEY" not in os.environ and "AWS_SESSION_TOKEN" not in os.environ
        raise KeyboardInterrupt
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET and os.environ["AWS_SESSION_TOKEN"] == "token"
    assert "AWS_ACCESS_KEY_ID" not in os.environ  # only what was there comes back
