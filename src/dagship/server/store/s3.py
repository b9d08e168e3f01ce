"""Blobs in an S3 bucket: s3://<bucket>/<prefix>/ab/<full hex digest>.

An upload is hashed and size-checked into a local staging file first and sent to S3 only
once it hashes to its digest, so S3 never holds a partial or unverified blob under a blob
key: a single PUT (or a completed multipart upload) appears whole or not at all. A crash
mid-upload leaves a staging file and perhaps an unfinished multipart upload; both are
removed by `cleanup` at the next start.

boto3 is imported here only, so a server without the `s3` extra still starts on files.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import Any

from anyio import to_thread

from dagship.core.vocabulary import ErrorCode
from dagship.server.errors import Invalid, NotFound, TooLarge
from dagship.server.settings import SettingsError

READ_CHUNK = 1024 * 1024
STAGING_PREFIX = "dagship-s3-upload-"
# Above this, boto3 sends the blob as a multipart upload (invisible until completed).
MULTIPART_THRESHOLD = 64 * 1024 * 1024
ENDPOINT_ENV = "DAGSHIP_S3_ENDPOINT_URL"


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str, client: Any, staging: Path) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.staging = staging
        self.staging.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(
        cls, url: str, endpoint_url: str | None = None, staging: Path | None = None
    ) -> S3BlobStore:
        """The store of ``s3://bucket/prefix``; endpoint, region and credentials come from
        the standard AWS settings, the endpoint also from DAGSHIP_S3_ENDPOINT_URL."""
        bucket, prefix = split_s3_url(url, "DAGSHIP_STORAGE_URL")
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise SettingsError(
                "DAGSHIP_STORAGE_URL is an s3:// URL but boto3 is not installed: "
                "pip install 'dagship[s3]'"
            ) from None
        endpoint = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )
        # Private to one server (its home): another server's cleanup must not remove it.
        staging = staging or Path(tempfile.mkdtemp(prefix="dagship-s3-staging-"))
        return cls(bucket, prefix, client, staging)

    def key(self, digest: str) -> str:
        name = f"{digest[:2]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    async def put(self, digest: str, chunks: AsyncIterable[bytes], max_size: int) -> int:
        fd, tmp_name = tempfile.mkstemp(prefix=STAGING_PREFIX, dir=self.staging)
        tmp_path = Path(tmp_name)
        try:
            hasher = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_size:
                        raise TooLarge(
                            f"blob {digest} is larger than the server's limit of {max_size} "
                            "bytes (DAGSHIP_MAX_BLOB_SIZE)",
                            max_size=max_size,
                        )
                    hasher.update(chunk)
                    out.write(chunk)
            actual = hasher.hexdigest()
            if actual != digest:
                raise Invalid(
                    f"uploaded bytes hash to {actual}, not {digest}; nothing was stored",
                    code=ErrorCode.DIGEST_MISMATCH,
                    actual=actual,
                )
            await to_thread.run_sync(self._publish, tmp_path, digest, size)
            return size
        finally:
            tmp_path.unlink(missing_ok=True)

    def _publish(self, tmp_path: Path, digest: str, size: int) -> None:
        if size <= MULTIPART_THRESHOLD:
            # One PUT, with the SHA-256 S3 checks on arrival: a corrupted transfer is refused.
            with tmp_path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(digest),
                    Body=body,
                    ContentLength=size,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
                )
            return
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)
        self.client.upload_file(str(tmp_path), self.bucket, self.key(digest), Config=config)

    def exists(self, digest: str) -> bool:
        return self._size(digest) is not None

    def has(self, digest: str, size: int) -> bool:
        """Whether the object is stored with ``size`` bytes. S3 keeps no "used" mark here:
        `dagship server gc` works on the local store only."""
        return self._size(digest) == size

    def _size(self, digest: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            found = self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise
        return int(found["ContentLength"])

    def read(self, digest: str, size: int | None = None) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if _status(exc) == 404:
                raise NotFound(f"blob {digest} is not in the store") from None
            raise
        actual = int(response["ContentLength"])
        if size is not None and actual != size:
            response["Body"].close()
            raise NotFound(
                f"blob {digest} is damaged in the store ({actual} bytes stored, {size} "
                "recorded); upload it again"
            )
        return _chunks(response["Body"])

    def cleanup(self) -> int:
        """Remove staging files and abort unfinished multipart uploads under the prefix.

        Also the store's start-up check: a missing bucket or refused credentials are a
        SettingsError naming the URL, not a failure at the first upload.
        """
        removed = 0
        for leftover in self.staging.glob(STAGING_PREFIX + "*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        for upload in self._unfinished_uploads():
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            removed += 1
        return removed

    def _unfinished_uploads(self) -> list[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self.prefix + "/" if self.prefix else ""
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [upload for page in pages for upload in page.get("Uploads", [])]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise SettingsError(
                f"cannot use DAGSHIP_STORAGE_URL s3://{self.bucket}/{self.prefix}: "
                f"{_explain(code, self.bucket)}"
            ) from None
        except BotoCoreError as exc:
            raise SettingsError(
                f"cannot use DAGSHIP_STORAGE_URL s3://{self.bucket}/{self.prefix}: {exc}"
            ) from None


def split_s3_url(url: str, setting: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ("bucket", "some/prefix")."""
    if not url.startswith("s3://"):
        raise SettingsError(f"{setting} must be an s3://bucket/prefix URL, got {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise SettingsError(f"{setting} names no bucket: {url!r}; use s3://bucket/prefix")
    return bucket, prefix.strip("/")


def _explain(code: str, bucket: str) -> str:
    if code in ("NoSuchBucket", "404"):
        return f"bucket {bucket} does not exist"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return f"access to bucket {bucket} was refused ({code}): check the AWS credentials"
    return f"S3 answered {code or 'an error'}"


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()
