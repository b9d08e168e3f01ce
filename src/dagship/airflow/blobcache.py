"""The bundle's local content cache: blobs stored once by digest, verified on arrival.

Layout: ``<root>/ab/<64 hex>``, read-only files. A blob is written to a temporary file in
``<root>/tmp`` and renamed into place only after its sha256 matched, so a cache entry is
always complete and correct; trees are built from it with hard links.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dagship.core.errors import DagshipError
from dagship.core.manifest import ManifestEntry

# Cache files (and the tree files linked to them) are read-only, so nobody edits a DAG
# file in place and corrupts every tree that shares its inode.
READ_ONLY = 0o444
_FETCH_THREADS = 8
_CHUNK = 1024 * 1024


class BundleError(DagshipError):
    """A DAG bundle version that cannot be materialized; the message says why."""


class CorruptBlobError(BundleError):
    """A blob whose bytes do not hash to its digest."""


# A blob's bytes, whole or (ApiClient.get_blob) streamed in chunks.
FetchBlob = Callable[[str], bytes | Iterable[bytes]]


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def missing(self, entries: Iterable[ManifestEntry]) -> list[ManifestEntry]:
        """One entry per digest that the cache lacks, in manifest order."""
        entries = list(entries)
        # One listing per prefix folder is much cheaper than one stat per file.
        cached: set[str] = set()
        for prefix in {e.sha256[:2] for e in entries}:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                cached.update(os.listdir(self.root / prefix))
        result = []
        for entry in entries:
            if entry.sha256 not in cached:
                result.append(entry)
                cached.add(entry.sha256)
        return result

    def fetch(self, entries: list[ManifestEntry], fetch_blob: FetchBlob) -> set[str]:
        """Download ``entries`` (distinct digests) into the cache; return the digests written.

        Raises CorruptBlobError naming the file when a download does not match its digest.
        """
        if not entries:
            return set()
        self.tmp.mkdir(parents=True, exist_ok=True)
        if len(entries) == 1:
            self._fetch_one(entries[0], fetch_blob)
        else:
            with ThreadPoolExecutor(min(_FETCH_THREADS, len(entries))) as pool:
                # list() re-raises the first failure.
                list(pool.map(lambda e: self._fetch_one(e, fetch_blob), entries))
        return {entry.sha256 for entry in entries}

    def _fetch_one(self, entry: ManifestEntry, fetch_blob: FetchBlob) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=entry.sha256[:12] + ".")
        try:
            hasher, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as f:
                try:
                    data = fetch_blob(entry.sha256)
                    for chunk in [data] if isinstance(data, bytes) else data:
                        hasher.update(chunk)
                        size += len(chunk)
                        f.write(chunk)
                except Exception as exc:
                    raise BundleError(
                        f"downloading blob {entry.sha256} for {entry.path!r} failed: {exc}"
                    ) from exc
            actual = hasher.hexdigest()
            if actual != entry.sha256 or size != entry.size:
                raise CorruptBlobError(
                    f"blob {entry.sha256} for {entry.path!r} is corrupt: the server sent "
                    f"{size} bytes with sha256 {actual} (expected {entry.size} bytes); "
                    "check the server's blob store"
                )
            self._publish(tmp, entry.sha256)
        except BaseException:
            _unlink(tmp)
            raise

    def put(self, digest: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix=digest[:12] + ".")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._publish(tmp, digest)
        except BaseException:
            _unlink(tmp)
            raise

    def _publish(self, tmp: str, digest: str) -> None:
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, READ_ONLY)
        os.replace(tmp, target)

    def collect(self, keep: set[str]) -> int:
        """Delete cached blobs whose digest is not in ``keep``; return how many."""
        removed = 0
        for folder in self.root.glob("??"):
            for name in os.listdir(folder):
                if name not in keep:
                    _unlink(folder / name)
                    removed += 1
        return removed

    def verify(self, entry: ManifestEntry) -> None:
        """Re-hash a cached blob; a bad one is removed so the next refresh fetches it again."""
        path = self.path(entry.sha256)
        if file_sha256(path) != entry.sha256:
            _unlink(path)
            raise CorruptBlobError(
                f"cached blob {entry.sha256} for {entry.path!r} was modified on disk; "
                "removed it, the next refresh downloads it again"
            )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
