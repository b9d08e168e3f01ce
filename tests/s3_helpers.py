"""A real S3 API on this machine (moto's server mode in a subprocess), and dagship servers
that keep their blobs in it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from tests.helpers import HEX64, Server, free_port

# moto accepts any credentials; these only have to be set so boto3 signs requests.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoS3:
    """``python -m moto.server`` on a free port; ``client()`` is a boto3 client for it."""

    def __init__(self, log: Path, env: Mapping[str, str] | None = None) -> None:
        # INITIAL_NO_AUTH_ACTION_COUNT=0 in ``env``: moto checks credentials like AWS does.
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoS3:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.extra_env},
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def env(self) -> dict[str, str]:
        return {**S3_CREDENTIALS, "DAGSHIP_S3_ENDPOINT_URL": self.url}

    def client(self, **overrides: str) -> Any:
        import boto3

        settings = {**S3_CREDENTIALS, **overrides}
        return boto3.session.Session(
            aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
            region_name=settings["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.url)

    def new_bucket(self, versioned: bool = False) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


class StoredObject:
    """A blob stored in S3, read like the file store's Path (``read_bytes``, ``parent.name``)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key

    @property
    def parent(self) -> PurePosixPath:
        return PurePosixPath(self.key).parent

    def read_bytes(self) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read())


class S3Server(Server):
    """A dagship server whose DAGSHIP_STORAGE_URL is s3://<new bucket>/blobs on ``s3``."""

    def __init__(
        self,
        home: Path,
        s3: MotoS3,
        backend: str = "sqlite",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = s3.new_bucket()
        env = {**s3.env(), "DAGSHIP_STORAGE_URL": f"s3://{self.bucket}/blobs", **(extra_env or {})}
        super().__init__(home, backend, env)

    @property
    def staging(self) -> Path:
        return self.home / "s3-staging"

    def object_keys(self) -> list[str]:
        client = self.s3.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stored_blob_files(self) -> dict[str, Any]:
        client = self.s3.client()
        found: dict[str, Any] = {}
        for key in self.object_keys():
            path = PurePosixPath(key)
            if HEX64.match(path.name) and path.parent.name == path.name[:2]:
                found[path.name] = StoredObject(client, self.bucket, key)
        return found
