"""Blob stores, chosen by the scheme of DAGSHIP_STORAGE_URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from dagship.server.settings import SettingsError
from dagship.server.store.base import BlobStore
from dagship.server.store.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "open_store"]


def open_store(url: str) -> BlobStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise SettingsError(f"DAGSHIP_STORAGE_URL must be a local path (file:///...): {url}")
        return LocalBlobStore(Path(unquote(parsed.path)))
    raise SettingsError(
        f"DAGSHIP_STORAGE_URL scheme {parsed.scheme!r} is not supported yet; "
        "use file:///path/to/blobs"
    )
