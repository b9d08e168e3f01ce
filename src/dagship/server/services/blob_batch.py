"""Many blobs in one response: the bundle's and the agent's first download of a version.

One request per blob costs a round trip and a request's handling for each of 10,000 small
files; a batch is one request whose body is a blob stream (core/blobstream.py), gzipped when
the client accepts it. Every blob asked for is checked before a byte is sent, so an unknown one
is a 404 naming them all, never a stream cut short.
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.orm import Session

from dagship.core import blobstream
from dagship.server.errors import NotFound
from dagship.server.services.access import AuthToken
from dagship.server.services.blobs import readable_among, stored_sizes
from dagship.server.store.base import BlobStore

log = logging.getLogger("dagship.server")
# Blobs up to this size are read whole ahead of the one being sent, by a few threads: an S3
# store answers each read after a round trip. Bigger ones are streamed in their turn.
PREFETCH_MAX_SIZE = 1024 * 1024
_PREFETCH_THREADS = 8
_PREFETCH_AHEAD = 32
# Fast compression: a batch is mostly source code, which level 1 already shrinks several times.
GZIP_LEVEL = 1
Record = tuple[str, int, Iterable[bytes]]


def readable_sizes(session: Session, reader: AuthToken, digests: Sequence[str]) -> dict[str, int]:
    """The size of each blob asked for, in request order without repeats; NotFound listing
    every one that is not stored or (for a token bound to a deployment) not readable."""
    wanted = list(dict.fromkeys(digests))
    stored = stored_sizes(session, wanted)
    readable = readable_among(session, reader, stored)
    missing = [digest for digest in wanted if digest not in readable]
    if missing:
        raise NotFound(
            f"{len(missing)} of the {len(wanted)} blobs asked for are not stored (first: "
            f"{missing[0]}); nothing was sent",
            missing=missing,
        )
    return {digest: stored[digest] for digest in wanted}


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding header takes gzip (and does not refuse it with q=0)."""
    for part in (accept_encoding or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            return not quality or _quality(quality) > 0
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def stream(store: BlobStore, sizes: dict[str, int], gzip: bool) -> Iterator[bytes]:
    """The response body: the blob stream of ``sizes`` (digest -> size), gzipped if asked.

    A blob the store fails to read stops the stream with an error, which the server ends
    without the closing chunk: the client sees a cut stream, never a short one."""
    body = blobstream.write_blobs(_read_all(store, sizes))
    try:
        yield from _gzip(body) if gzip else body
    except Exception:
        log.exception("a blob batch of %d blobs stopped: its stream is cut", len(sizes))
        raise


def _read_all(store: BlobStore, sizes: dict[str, int]) -> Iterator[Record]:
    """``(digest, size, chunks)`` of each blob in order, the small ones read ahead."""
    pool = ThreadPoolExecutor(_PREFETCH_THREADS, thread_name_prefix="blob-batch")
    try:
        ahead: deque[tuple[str, int, Future[list[bytes]] | None]] = deque()
        items = iter(sizes.items())
        while True:
            while len(ahead) < _PREFETCH_AHEAD and (item := next(items, None)) is not None:
                digest, size = item
                small = size <= PREFETCH_MAX_SIZE
                read = pool.submit(_read, store, digest, size) if small else None
                ahead.append((digest, size, read))
            if not ahead:
                return
            digest, size, read = ahead.popleft()
            yield digest, size, read.result() if read else store.read(digest, size)
    finally:
        # A client gone mid-stream closes this generator wherever it is collected, perhaps
        # in the event loop: drop the reads not started rather than wait for them.
        pool.shutdown(wait=False, cancel_futures=True)


def _read(store: BlobStore, digest: str, size: int) -> list[bytes]:
    return list(store.read(digest, size))


def _gzip(pieces: Iterable[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    for piece in pieces:
        if out := compressor.compress(piece):
            yield out
    yield compressor.flush()
