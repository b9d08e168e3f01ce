"""Blobs in a local directory: <root>/ab/<full hex digest>.

Uploads are written to <root>/tmp/ while being hashed, fsynced, and moved into place
with os.replace, so a crash mid-upload leaves only a temp file, removed at next start.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

from dagship.core.vocabulary import ErrorCode
from dagship.server.errors import Invalid, NotFound, TooLarge

READ_CHUNK = 1024 * 1024
TMP_PREFIX = "upload-"


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    async def put(self, digest: str, chunks: AsyncIterable[bytes], max_size: int) -> int:
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.tmp)
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
                out.flush()
                await to_thread.run_sync(os.fsync, out.fileno())
            actual = hasher.hexdigest()
            if actual != digest:
                raise Invalid(
                    f"uploaded bytes hash to {actual}, not {digest}; nothing was stored",
                    code=ErrorCode.DIGEST_MISMATCH,
                    actual=actual,
                )
            await to_thread.run_sync(self._publish, tmp_path, digest)
            return size
        finally:
            tmp_path.unlink(missing_ok=True)

    def _publish(self, tmp_path: Path, digest: str) -> None:
        target = self.path(digest)
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp_path, target)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> Iterator[bytes]:
        try:
            handle = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None
        return _chunks(handle)

    def cleanup(self) -> int:
        removed = 0
        for leftover in self.tmp.glob(TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk
