"""The bundle's local content cache: blobs stored once by digest, verified on arrival.

Layout: ``<root>/ab/<64 hex>``, read-only files. A blob is written to a temporary file in
``<root>/tmp`` and renamed into place only after its sha256 matched, so a cache entry is
always complete and correct; trees are built from it with hard links.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from dagship.client.errors import ApiError, BlobBatchError
from dagship.core.blobstream import MAX_DIGESTS
from dagship.core.errors import DagshipError
from dagship.core.manifest import ManifestEntry

log = logging.getLogger("dagship.airflow.blobcache")
# Cache files (and the tree files linked to them) are read-only, so nobody edits a DAG
# file in place and corrupts every tree that shares its inode.
READ_ONLY = 0o444
_FETCH_THREADS = 8
_CHUNK = 1024 * 1024
# Blobs up to this size come in batches (one request for up to 1000); bigger ones are
# streamed one by one, since a batch holds each blob whole in memory.
BATCH_MAX_SIZE = 1024 * 1024
# Batches downloaded at once, threads writing their blobs to disk, and how many blobs of a
# batch may wait for those threads.
_STREAMS = 3
_WRITE_THREADS = 4
_WRITES_AHEAD = 256


class BundleError(DagshipError):
    """A DAG bundle version that cannot be materialized; the message says why."""


class CorruptBlobError(BundleError):
    """A blob whose bytes do not hash to its digest."""


# A blob's bytes, whole or (ApiClient.get_blob) streamed in chunks.
FetchBlob = Callable[[str], bytes | Iterable[bytes]]


class BlobSource(Protocol):
    """Where missing blobs come from: the dagship server's ApiClient."""

    def get_blob(self, digest: str) -> Iterator[bytes]: ...

    def get_blobs(
        self, digests: Iterable[str], sizes: Mapping[str, int] | None = None
    ) -> Iterator[tuple[str, bytes]]: ...


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        # False once a server answered that it has no batch route (an older dagship).
        self.batches = True

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

    def fetch_batch(self, entries: list[ManifestEntry], source: BlobSource) -> set[str]:
        """Like ``fetch``, with the small blobs in batches (``source.get_blobs``): one request
        per 1000 blobs rather than one each. A server without batches gets one request each."""
        small = [e for e in entries if e.size <= BATCH_MAX_SIZE] if self.batches else []
        written: set[str] = set()
        if small:
            self.tmp.mkdir(parents=True, exist_ok=True)
            try:
                self._write_batch(small, source, written)
            except ApiError as exc:
                if not _no_batch_route(exc):
                    raise _batch_failed(small, exc) from exc
                self.batches = False
        rest = [e for e in entries if e.sha256 not in written]
        return written | self.fetch(rest, source.get_blob)

    def receive(
        self,
        entries: list[ManifestEntry],
        inline: Iterable[tuple[str, bytes]],
        source: BlobSource,
    ) -> set[str]:
        """``fetch_batch`` for the ``entries`` whose content did not come ``inline``: the
        ``(digest, content)`` pairs of the current-version answer (``?inline=``). Each is
        checked as a download is, sha256 and size; one that fails is refused (logged, never
        written) and downloaded instead. Pairs not among ``entries`` are ignored."""
        wanted = {entry.sha256: entry for entry in entries}
        written: set[str] = set()
        for digest, content in inline:
            entry = wanted.get(digest)
            if entry is None or digest in written:
                continue
            actual = hashlib.sha256(content).hexdigest()
            if actual != digest or len(content) != entry.size:
                log.warning(
                    "refused blob %s for %r sent inline: %d bytes with sha256 %s (expected %d "
                    "bytes); downloading it instead",
                    digest,
                    entry.path,
                    len(content),
                    actual,
                    entry.size,
                )
                continue
            self.tmp.mkdir(parents=True, exist_ok=True)
            self.put(digest, content)
            written.add(digest)
        rest = [entry for entry in entries if entry.sha256 not in written]
        return written | self.fetch_batch(rest, source)

    def _write_batch(
        self, entries: list[ManifestEntry], source: BlobSource, written: set[str]
    ) -> None:
        """Download ``entries`` a batch of ``MAX_DIGESTS`` at a time, a few batches at once (the
        server reads and sends one while we write another), writing each blob as it arrives
        (verified by the stream's reader); ``written`` collects the digests in place."""
        for prefix in {entry.sha256[:2] for entry in entries}:
            (self.root / prefix).mkdir(exist_ok=True)
        batches = [entries[i : i + MAX_DIGESTS] for i in range(0, len(entries), MAX_DIGESTS)]
        stop = threading.Event()
        streams = min(_STREAMS, len(batches))
        with (
            ThreadPoolExecutor(_WRITE_THREADS, thread_name_prefix="blob-write") as writers,
            ThreadPoolExecutor(streams, thread_name_prefix="blob-batch") as downloads,
        ):
            started = [
                downloads.submit(self._write_stream, batch, source, writers, written, stop)
                for batch in batches
            ]
            failed = [error for future in started if (error := future.exception()) is not None]
        if failed:
            raise failed[0]

    def _write_stream(
        self,
        entries: list[ManifestEntry],
        source: BlobSource,
        writers: ThreadPoolExecutor,
        written: set[str],
        stop: threading.Event,
    ) -> None:
        sizes = {entry.sha256: entry.size for entry in entries}
        pending: deque[Future[str]] = deque()
        failed: list[BaseException] = []
        try:
            if stop.is_set():
                return
            for digest, data in source.get_blobs(sizes, sizes):
                pending.append(writers.submit(self._write_verified, digest, data))
                while len(pending) > _WRITES_AHEAD or (pending and pending[0].done()):
                    written.add(pending.popleft().result())
                if stop.is_set():
                    return  # another batch failed: this one's blobs are not needed now
        except BaseException:
            stop.set()
            raise
        finally:
            # Every write started ends here, whatever happened: no temporary file outlives
            # the call, and each blob written is accounted for.
            for future in pending:
                if (error := future.exception()) is None:
                    written.add(future.result())
                else:
                    failed.append(error)
        if failed:
            stop.set()
            raise failed[0]

    def _write_verified(self, digest: str, data: bytes) -> str:
        tmp = os.path.join(self.tmp, f"{digest}.{uuid.uuid4().hex[:8]}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, self.path(digest))
        except BaseException:
            _unlink(tmp)
            raise
        return digest

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


def _no_batch_route(exc: ApiError) -> bool:
    """An older server: no such route (404 without a ``missing`` list) or method (405)."""
    return exc.status == 405 or (exc.status == 404 and "missing" not in exc.body)


def _batch_failed(entries: list[ManifestEntry], exc: ApiError) -> BundleError:
    """The error naming the file (and blob) a batch stopped at, when known."""
    paths = {entry.sha256: entry.path for entry in entries}
    missing = [str(digest) for digest in exc.body.get("missing", [])]
    if missing:
        return BundleError(
            f"the server does not store {len(missing)} of the {len(entries)} blobs needed, "
            f"e.g. blob {missing[0]} for {paths.get(missing[0])!r}: {exc}"
        )
    digest = exc.digest if isinstance(exc, BlobBatchError) else None
    if digest in paths:
        return BundleError(f"downloading blob {digest} for {paths[digest]!r} failed: {exc}")
    return BundleError(f"downloading {len(entries)} blobs failed: {exc}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
