"""What the server needs from a blob store, whatever holds the bytes."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterator
from typing import Protocol


class BlobStore(Protocol):
    """Content-addressed bytes, keyed by lowercase sha256 hex.

    `put` must never make a partial or unverified blob visible: the bytes appear
    under their digest only once they are complete and hash to it.
    """

    async def put(self, digest: str, chunks: AsyncIterable[bytes], max_size: int) -> int:
        """Store the streamed bytes under `digest`; return their size.

        Raises TooLarge past `max_size` bytes and Invalid(code="digest_mismatch") when
        the bytes hash to something else; nothing is stored in either case.
        """
        ...

    def exists(self, digest: str) -> bool: ...

    def has(self, digest: str, size: int) -> bool:
        """Whether the blob is stored whole (`size` bytes); marks it as just used."""
        ...

    def read(self, digest: str, size: int | None = None) -> Iterator[bytes]:
        """The blob's bytes in chunks; raises NotFound if it is not stored (with `size`
        bytes, when given), and stops with an error if it changes while read."""
        ...

    def cleanup(self) -> int:
        """Remove leftovers of interrupted uploads; returns how many were removed."""
        ...
