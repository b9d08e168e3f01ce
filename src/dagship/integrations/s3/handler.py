"""The AWS Lambda handler: S3 object events (direct, or wrapped in SQS messages) start a sync
of the whole prefix, never of the one object, so a burst of uploads ends in the prefix's
exact final state (docs/s3.md).

Settings are environment variables: DAGSHIP_URL, DAGSHIP_API_TOKEN (or
DAGSHIP_API_TOKEN_SECRET, the name or ARN of a Secrets Manager secret holding it),
DAGSHIP_DEPLOYMENT and DAGSHIP_S3_URL (s3://bucket/prefix).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from dagship.client.api import ApiClient
from dagship.integrations.s3.bucket import S3Location, S3SyncError, connect, parse_s3_url
from dagship.integrations.s3.hashes import CACHE_ENV
from dagship.integrations.s3.sync import sync_prefix

REQUIRED = ("DAGSHIP_URL", "DAGSHIP_DEPLOYMENT", "DAGSHIP_S3_URL")


@dataclass(frozen=True)
class HandlerSettings:
    url: str
    token: str
    deployment: str
    location: S3Location

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerSettings:
        env = os.environ if env is None else env
        missing = [name for name in REQUIRED if not env.get(name)]
        if not env.get("DAGSHIP_API_TOKEN") and not env.get("DAGSHIP_API_TOKEN_SECRET"):
            missing.append("DAGSHIP_API_TOKEN or DAGSHIP_API_TOKEN_SECRET")
        if missing:
            raise S3SyncError(
                f"the dagship Lambda function needs {', '.join(missing)} in its environment "
                "(docs/s3.md)"
            )
        token = env.get("DAGSHIP_API_TOKEN") or _secret(env["DAGSHIP_API_TOKEN_SECRET"])
        return cls(
            url=env["DAGSHIP_URL"],
            token=token,
            deployment=env["DAGSHIP_DEPLOYMENT"],
            location=parse_s3_url(env["DAGSHIP_S3_URL"]),
        )


def lambda_handler(event: Mapping[str, Any], context: object = None) -> dict[str, Any]:
    """Sync the configured prefix if the event names an object under it.

    An event for another bucket is an error (the notification is misconfigured), so the
    invocation fails and is retried or sent to the dead-letter queue, never ignored.
    """
    settings = HandlerSettings.from_env()
    keys = relevant_keys(event, settings.location)
    if not keys:
        return {"synced": False, "reason": "no object of the prefix in the event"}
    os.environ.setdefault(CACHE_ENV, str(Path(tempfile.gettempdir()) / "dagship-cache"))
    client = ApiClient(settings.url, settings.token)
    try:
        result = sync_prefix(client, settings.location.url, settings.deployment, s3=connect())
    finally:
        client.close()
    return {
        "synced": True,
        "keys": keys,
        "deployed": not result.unchanged,
        "seq": result.deploy.seq,
        "deploy_id": result.deploy.id,
        "files": result.files,
        "attempts": result.attempts,
    }


def relevant_keys(event: Mapping[str, Any], location: S3Location) -> list[str]:
    """The keys under ``location`` that the event's records name."""
    keys = []
    for record in s3_records(event):
        bucket = record.get("s3", {}).get("bucket", {}).get("name")
        key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
        if bucket != location.bucket:
            raise S3SyncError(
                f"event for object {key!r} in bucket {bucket!r}, but this function deploys "
                f"{location.url}: fix the bucket notification; nothing was deployed"
            )
        if key.startswith(location.prefix):
            keys.append(key)
    return keys


def s3_records(event: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The S3 records of an S3 event, or of an SQS event whose messages carry S3 events
    (S3's test event, sent when a notification is set up, has none)."""
    for record in event.get("Records", []) or []:
        if record.get("eventSource") == "aws:s3":
            yield record
        elif record.get("eventSource") == "aws:sqs":
            try:
                body = json.loads(record.get("body") or "{}")
            except ValueError:
                raise S3SyncError(
                    f"SQS message {record.get('messageId')!r} is not JSON: is the queue fed "
                    "by the bucket's notifications?"
                ) from None
            if isinstance(body, dict):
                yield from s3_records(body)


def _secret(name: str) -> str:
    import boto3

    value = boto3.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    return str(value).strip()
