"""The blob stream: many blobs in one response body (``POST /api/v1/blobs/batch``).

A stream is a sequence of records, nothing before, between or after them::

    32 bytes   the blob's sha256, raw (not hex)
     8 bytes   its size in bytes, unsigned big-endian
     n bytes   its content

The writer (the server) frames blobs it reads from its store; the reader (the clients) checks
each record against the digests asked for: its bytes must hash to its digest and have the size
expected, no blob may come twice or unasked, and a stream that ends before every blob asked for
arrived is an error, so a cut connection is never taken for a complete answer.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping

from dagship.core.errors import DagshipError

MEDIA_TYPE = "application/vnd.dagship.blobs"
MAX_DIGESTS = 1000
_HEADER = struct.Struct(">32sQ")
HEADER_SIZE = _HEADER.size
# The writer yields pieces of about this size: one per record would make 10,000 tiny writes.
_PIECE = 256 * 1024


class BlobStreamError(DagshipError):
    """A blob stream that is cut, malformed, or holds a blob other than the one asked for;
    ``digest`` is the blob it stopped at (the first not received, for a cut stream)."""

    def __init__(self, message: str, digest: str | None = None) -> None:
        super().__init__(message)
        self.digest = digest


def header(digest: str, size: int) -> bytes:
    return _HEADER.pack(bytes.fromhex(digest), size)


def write_blobs(blobs: Iterable[tuple[str, int, Iterable[bytes]]]) -> Iterator[bytes]:
    """The stream of ``(digest, size, chunks)``, in pieces of about 256 KiB.

    Raises BlobStreamError when a blob's chunks do not add up to its size: the stream stops
    there rather than carrying a record that would misframe everything after it.
    """
    pending: list[bytes] = []
    pending_size = 0
    for digest, size, chunks in blobs:
        pending.append(header(digest, size))
        pending_size += HEADER_SIZE
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            if sent > size:
                raise BlobStreamError(f"blob {digest} has more than its {size} bytes")
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= _PIECE:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if sent != size:
            raise BlobStreamError(f"blob {digest} has {sent} of its {size} bytes")
    if pending:
        yield b"".join(pending)


def read_blobs(chunks: Iterable[bytes], expected: Mapping[str, int]) -> Iterator[tuple[str, bytes]]:
    """The blobs of a stream as ``(digest, content)``, each verified; ``expected`` maps every
    digest asked for to its size (-1: any size). Raises BlobStreamError at the first problem."""
    left = dict(expected)
    buffer = bytearray()
    start = 0  # where the unread part of ``buffer`` begins
    for chunk in chunks:
        buffer += chunk
        while len(buffer) - start >= HEADER_SIZE:
            raw, size = _HEADER.unpack_from(buffer, start)
            end = start + HEADER_SIZE + size
            if len(buffer) < end:
                _check_header(raw.hex(), size, left)
                break
            digest = raw.hex()
            _check_header(digest, size, left)
            content = bytes(buffer[start + HEADER_SIZE : end])
            if hashlib.sha256(content).hexdigest() != digest:
                raise BlobStreamError(
                    f"blob {digest} arrived with bytes that hash to something else", digest
                )
            del left[digest]
            start = end
            yield digest, content
        # Drop what was read once it is most of the buffer: cheap, and never quadratic.
        if start and start >= len(buffer) // 2:
            del buffer[:start]
            start = 0
    if left:
        where = "inside a record" if len(buffer) > start else "between records"
        first = next(iter(left))
        raise BlobStreamError(
            f"the blob stream was cut {where}, after {len(expected) - len(left)} of "
            f"{len(expected)} blobs; blob {first} and {len(left) - 1} more did not arrive",
            first,
        )
    if len(buffer) > start:
        raise BlobStreamError("the blob stream has bytes after its last record")


def _check_header(digest: str, size: int, left: Mapping[str, int]) -> None:
    if digest not in left:
        raise BlobStreamError(
            f"the blob stream holds blob {digest}, which was not asked for (or came twice)", digest
        )
    if left[digest] not in (-1, size):
        raise BlobStreamError(
            f"blob {digest} arrived with {size} bytes; {left[digest]} were expected", digest
        )
