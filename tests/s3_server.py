"""A real S3-compatible server on 127.0.0.1 for tests: moto's, in a process of its own, stopped by process id.

    with s3_server() as s3:        # s3.env: AWS_ENDPOINT_URL, fresh credentials, region
        s3.client().create_bucket(Bucket="results")

Run as a script (``python tests/s3_server.py PORT``) it is the server. One fix over moto 5.2: it answers
CompleteMultipartUpload with a ``<CompleteMultipartUploadResponse>`` root, where S3 (and so the AWS SDK in
pyarrow 26, which checks the body of a 200 for an embedded error) expects ``<CompleteMultipartUploadResult>``;
without it every upload of pyarrow's, so every checkpoint Ray writes, fails after ten retries.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60


@dataclass
class S3Server:
    endpoint: str
    env: dict[str, str]  # what a process needs to use it: endpoint, credentials, region
    secret_key: str  # to check that it leaks nowhere

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.env["AWS_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=self.secret_key,
        )  # fmt: skip

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server(log: Path | None = None) -> Iterator[S3Server]:
    """Start the server on a free port, wait until it answers; always stopped (by its pid) at the end."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    secret_key = secrets.token_hex(20)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": f"AKIA{secrets.token_hex(8).upper()}",
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata service to ask on a test machine
    }
    out = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, __file__, str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not start (exit {process.poll()})") from None
                time.sleep(0.2)
        yield S3Server(endpoint, env, secret_key)
    finally:
        process.kill()
        process.wait(timeout=30)
        if log:
            out.close()


def _serve(port: int) -> None:
    from moto.core import serialize
    from moto.server import ThreadedMotoServer

    serialized = serialize.RestXMLSerializer._serialized_result_to_response

    def s3_root(self, resp, result, shape, serialized_result):  # noqa: ANN001, ANN202
        resp = serialized(self, resp, result, shape, serialized_result)
        if self.operation_model.name == "CompleteMultipartUpload":
            resp["body"] = resp["body"].replace("CompleteMultipartUploadResponse", "CompleteMultipartUploadResult")
        return resp

    serialize.RestXMLSerializer._serialized_result_to_response = s3_root
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    _serve(int(sys.argv[1]))
