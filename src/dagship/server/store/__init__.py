"""Blob stores, chosen by the scheme of DAGSHIP_STORAGE_URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from dagship.server.settings import SettingsError
from dagship.server.store.base import BlobStore
from dagship.server.store.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "open_store"]


def open_store(url: str, home: Path | None = None) -> BlobStore:
    """The store of DAGSHIP_STORAGE_URL; `home` (DAGSHIP_HOME) holds uploads being staged
    for stores that are not local."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise SettingsError(f"DAGSHIP_STORAGE_URL must be a local path (file:///...): {url}")
        return LocalBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        # Imported here: boto3 is the optional `s3` extra.
        from dagship.server.store.s3 import S3BlobStore

        return S3BlobStore.from_url(url, staging=home / "s3-staging" if home else None)
    raise SettingsError(
        f"DAGSHIP_STORAGE_URL scheme {parsed.scheme!r} is not supported; "
        "use file:///path/to/blobs or s3://bucket/prefix"
    )
