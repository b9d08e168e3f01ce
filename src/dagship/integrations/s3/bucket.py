"""What an S3 prefix holds: one listing of the latest version of every object, with each key
checked as a deploy path, and downloads of exactly the listed version.

boto3 is imported lazily (``connect``): the rest of dagship does not need it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from dagship.core.errors import DagshipError
from dagship.core.manifest import ManifestError, check_path

ENDPOINT_ENV = "DAGSHIP_S3_ENDPOINT_URL"
_CHUNK = 1024 * 1024


class S3SyncError(DagshipError):
    """An S3 prefix that cannot be deployed as it is; nothing was deployed."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, path: str) -> str:
        return self.prefix + path


@dataclass(frozen=True)
class S3Object:
    key: str
    path: str  # relative to the prefix: the path in the deployed DAG bundle
    size: int
    etag: str
    version_id: str | None  # None in a bucket that never had versioning
    modified_at: datetime
    # Whether S3 holds a SHA-256 checksum of it, per the listing; None when the listing does
    # not say (moto and some S3-compatible stores leave ChecksumAlgorithm out of it).
    has_sha256: bool | None

    @property
    def cache_key(self) -> str:
        return f"{self.etag}:{self.size}:{self.version_id or ''}"


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/some/prefix`` → S3Location("bucket", "some/prefix/")."""
    if not url.startswith("s3://"):
        raise S3SyncError(f"not an S3 URL: {url!r}; use s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise S3SyncError(f"{url!r} names no bucket; use s3://bucket/prefix")
    prefix = prefix.strip("/")
    return S3Location(bucket, prefix + "/" if prefix else "")


def connect(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client: region and credentials from the standard AWS settings, the
    endpoint from ``endpoint_url``, DAGSHIP_S3_ENDPOINT_URL or AWS's own settings."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise S3SyncError("S3 sync needs boto3: pip install 'dagship[s3]'") from None
    endpoint = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
    config = Config(retries={"max_attempts": 5, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def list_objects(s3: Any, location: S3Location) -> list[S3Object]:
    """The latest version of every object under the prefix, sorted by path.

    Paths are checked by the caller (``check_key_path``) once ignore rules are applied.
    """
    objects: list[S3Object] = []
    for item in _latest_versions(s3, location):
        key = decode_key(item["Key"])
        if key.endswith("/"):
            continue  # a "folder" placeholder made by consoles, not a file
        path = key[len(location.prefix) :]
        version = item.get("VersionId")
        objects.append(
            S3Object(
                key=key,
                path=path,
                size=int(item["Size"]),
                etag=str(item.get("ETag", "")).strip('"'),
                version_id=None if version in (None, "null") else str(version),
                modified_at=item["LastModified"],
                has_sha256=(
                    "SHA256" in item["ChecksumAlgorithm"] if "ChecksumAlgorithm" in item else None
                ),
            )
        )
    if not objects:
        raise S3SyncError(
            f"{location.url} holds no objects: check the bucket and prefix (a prefix that "
            "does not exist lists as empty); nothing was deployed"
        )
    return sorted(objects, key=lambda obj: obj.path)


def _latest_versions(s3: Any, location: S3Location) -> Iterator[dict[str, Any]]:
    # ListObjectVersions gives each object's version id in the one listing, so the sync
    # reads exactly what it listed even if an object is overwritten meanwhile.
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=location.bucket, Prefix=location.prefix, EncodingType="url"
    )
    try:
        for page in pages:
            for item in page.get("Versions", []):
                if item.get("IsLatest"):
                    yield item
    except Exception as exc:
        raise s3_error(exc, location.url) from None


def decode_key(raw: str) -> str:
    """A key as listed with EncodingType=url; keys that are not UTF-8 are refused."""
    data = unquote_to_bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise S3SyncError(
            f"object key {data!r} is not UTF-8 text: rename it; nothing was deployed"
        ) from None


def check_key_path(key: str, path: str) -> None:
    """The key's path under the prefix must be a safe, relative path for the DAG bundle."""
    bad = next((ch for ch in path if ord(ch) < 32 or ord(ch) == 127), None)
    reason = f"it contains the control character {bad!r}" if bad is not None else None
    if reason is None:
        try:
            check_path(path)
        except ManifestError as exc:
            reason = str(exc)
    if reason is not None:
        raise S3SyncError(
            f"object key {key!r} cannot be deployed ({reason}): rename or delete it; "
            "nothing was deployed"
        )


def download(s3: Any, location: S3Location, obj: S3Object, dest: Path) -> str:
    """Write the listed version of ``obj`` to ``dest``; return its SHA-256 hex digest."""
    args = {"Bucket": location.bucket, "Key": obj.key}
    if obj.version_id is not None:
        args["VersionId"] = obj.version_id
    hasher = hashlib.sha256()
    try:
        body = s3.get_object(**args)["Body"]
        with dest.open("wb") as out:
            for chunk in body.iter_chunks(_CHUNK):
                hasher.update(chunk)
                out.write(chunk)
    except Exception as exc:
        if _code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
            raise S3SyncError(
                f"object {obj.key!r} was deleted or replaced after it was listed: nothing "
                "was deployed; sync again"
            ) from None
        raise s3_error(exc, location.url, obj.key) from None
    if dest.stat().st_size != obj.size:
        raise S3SyncError(
            f"object {obj.key!r} changed while it was read: nothing was deployed; sync again"
        )
    return hasher.hexdigest()


def full_object_sha256(s3: Any, location: S3Location, obj: S3Object) -> str | None:
    """S3's own SHA-256 of the whole object, when it has one (not a checksum of parts)."""
    args = {"Bucket": location.bucket, "Key": obj.key, "ChecksumMode": "ENABLED"}
    if obj.version_id is not None:
        args["VersionId"] = obj.version_id
    try:
        head = s3.head_object(**args)
    except Exception as exc:
        if _code(exc) in ("NoSuchKey", "NoSuchVersion", "404"):
            return None  # download() then says plainly what happened
        raise s3_error(exc, location.url, obj.key) from None
    value = head.get("ChecksumSHA256")
    if not value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT" or "-" in value:
        return None
    import base64

    return base64.b64decode(value).hex()


def s3_error(exc: BaseException, url: str, key: str | None = None) -> DagshipError:
    """An error of boto3 as a sentence naming the bucket, prefix or key."""
    code = _code(exc)
    what = f"object {key!r} in {url}" if key else url
    if code == "NoSuchBucket":
        return S3SyncError(f"{url}: the bucket does not exist; nothing was deployed")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return S3SyncError(
            f"S3 refused access to {what} ({code}): check the AWS credentials and the "
            "policy in docs/s3.md; nothing was deployed"
        )
    if code:
        return S3SyncError(f"S3 answered {code} for {what}; nothing was deployed")
    return S3SyncError(f"cannot read {what}: {exc}; nothing was deployed")


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
