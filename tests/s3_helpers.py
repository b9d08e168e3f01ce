"""A real S3 API on this machine (moto's server mode in a subprocess), and dagship servers
that keep their blobs in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from dagship.integrations.s3 import lambda_handler
from tests.helpers import HEX64, PLAIN_HTTP, Server, free_port

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
        with httpx.Client(timeout=1, verify=PLAIN_HTTP) as probe:
            while True:
                try:
                    probe.get(self.url + "/moto-api/")
                    return self
                except httpx.HTTPError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        log = self.log.read_text()
                        raise RuntimeError(f"moto did not start:\n{log}") from None
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


# --------------------------------------------------------------------------- Lambda events


def s3_event(bucket: str, key: str, name: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 event notification as S3 sends it (event message structure, version 2.1)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-12-02T16:50:00.000Z",
                "eventName": name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "198.51.100.7"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5Jg",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "dagship-deploy",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    # Keys arrive URL-encoded, spaces as '+'.
                    "object": {
                        "key": key.replace(" ", "+"),
                        "size": 1024,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def sqs_event(inner: dict[str, Any]) -> dict[str, Any]:
    """An SQS event whose message is an S3 event (a queue subscribed to the bucket)."""
    return {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": json.dumps(inner),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183"},
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dagship-events",
                "awsRegion": "us-east-1",
            }
        ]
    }


def invoke_in_parallel(events: list[dict[str, Any]]) -> list[Any]:
    barrier = threading.Barrier(len(events))
    results: list[Any] = [None] * len(events)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = lambda_handler(events[index], None)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results
