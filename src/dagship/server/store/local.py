"""Blobs in a local directory: <root>/ab/<full hex digest>.

Uploads are written to <root>/tmp/ while being hashed, fsynced, and moved into place
with os.replace (then the folder is fsynced, so the rename survives a power cut); a crash
mid-upload leaves only a temp file, removed at next start. Blobs that `dagship server scrub`
finds damaged are moved to <root>/quarantine/. Folders are created 0700 and files 0600,
whatever the umask: the store is the server's alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from anyio import to_thread

from dagship.core.vocabulary import ErrorCode
from dagship.server.errors import Invalid, NotFound, TooLarge

READ_CHUNK = 1024 * 1024
TMP_PREFIX = "upload-"
DIR_MODE = 0o700
# How stale a blob's "used" mark (its mtime) may get before /blobs/missing refreshes it.
USED_MARK_SECONDS = 1800.0
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class StoredFile:
    """A blob's file as read back: its name, what its bytes hash to, its size and inode."""

    digest: str
    actual: str
    size: int
    inode: int

    @property
    def whole(self) -> bool:
        return self.actual == self.digest


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        self.tmp = root / "tmp"
        self.quarantine_dir = root / "quarantine"
        private_dir(self.root)
        private_dir(self.tmp)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    async def put(self, digest: str, chunks: AsyncIterable[bytes], max_size: int) -> int:
        # mkstemp creates the file 0600.
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
        if not target.parent.is_dir():
            target.parent.mkdir(mode=DIR_MODE, exist_ok=True)
            fsync_dir(self.root)
        os.replace(tmp_path, target)
        # The rename is only durable once the folder holding the new name is on disk.
        fsync_dir(target.parent)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def has(self, digest: str, size: int) -> bool:
        """Whether the blob is stored with `size` bytes; marks it as used (its mtime), so
        that `dagship server gc` keeps it while a deploy that counts on it is uploaded.

        The mark is refreshed only when older than USED_MARK_SECONDS: repeated deploys of
        the same files write no metadata, and gc (which needs twice that age) still leaves
        any client at least that long between its question and its commit.
        """
        # A plain string path: this runs for every file of every deploy.
        path = f"{self._root}/{digest[:2]}/{digest}"
        try:
            found = os.stat(path)
            if found.st_size != size:
                return False
            if time.time() - found.st_mtime > USED_MARK_SECONDS:
                os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def read(self, digest: str, size: int | None = None) -> Iterator[bytes]:
        """The blob's bytes in chunks; NotFound if it is not stored (with `size` bytes, when
        given: the server's own peeks at a file's head pass none).

        A blob changed on disk while it is sent stops the stream with an error rather than
        ending it short or long, so no client takes a cut blob for a whole one.
        """
        try:
            handle = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store; upload it again") from None
        actual = os.fstat(handle.fileno()).st_size
        if size is None:
            size = actual
        elif actual != size:
            handle.close()
            raise NotFound(
                f"blob {digest} is damaged in the store ({actual} bytes on disk, {size} "
                "recorded); upload it again or run `dagship server scrub`"
            )
        return _chunks(handle, digest, size)

    def cleanup(self) -> int:
        """At start: remove leftovers of interrupted uploads and make the folders private
        (an older store's may be 0755; the files in them are then out of others' reach)."""
        for folder in self.root.iterdir():
            if len(folder.name) == 2 and folder.is_dir():
                private_dir(folder)
        removed = 0
        for leftover in self.tmp.glob(TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed

    # -- maintenance: scrub and gc

    def digests(self) -> Iterator[str]:
        """Every digest with a file in the store, in no particular order."""
        for folder in self.root.iterdir():
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _HEX64.match(path.name) and path.name[:2] == folder.name:
                    yield path.name

    def hash(self, digest: str) -> StoredFile | None:
        """What the stored file of `digest` holds; None if there is none."""
        try:
            with self.path(digest).open("rb") as handle:
                inode = os.fstat(handle.fileno()).st_ino
                hasher = hashlib.sha256()
                size = 0
                while chunk := handle.read(READ_CHUNK):
                    hasher.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return None
        return StoredFile(digest, hasher.hexdigest(), size, inode)

    def size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def mtime(self, digest: str) -> float | None:
        try:
            return self.path(digest).stat().st_mtime
        except FileNotFoundError:
            return None

    def quarantine(self, found: StoredFile) -> Path | None:
        """Move a damaged blob aside, so the store lacks it and clients upload it again.

        Only the very file that was hashed: if an upload replaced it since (a new inode),
        the new file is whole and stays; None then.
        """
        path = self.path(found.digest)
        try:
            if path.stat().st_ino != found.inode:
                return None
        except FileNotFoundError:
            return None
        private_dir(self.quarantine_dir)
        target = self.quarantine_dir / f"{found.digest}.{time.strftime('%Y%m%dT%H%M%S')}"
        os.replace(path, target)
        fsync_dir(path.parent)
        return target

    def quarantined(self) -> int:
        if not self.quarantine_dir.is_dir():
            return 0
        return sum(1 for _ in self.quarantine_dir.iterdir())

    def remove(self, digest: str, older_than: float) -> bool:
        """Delete a blob last written or used before `older_than` (a timestamp); a blob
        touched since is kept, as an upload or a deploy may be counting on it."""
        mtime = self.mtime(digest)
        if mtime is None or mtime >= older_than:
            return False
        self.path(digest).unlink(missing_ok=True)
        return True


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) if needed and make it 0700, whatever its mode was."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(handle: BinaryIO, digest: str, size: int) -> Iterator[bytes]:
    sent = 0
    with handle:
        while chunk := handle.read(min(READ_CHUNK, size - sent + 1)):
            sent += len(chunk)
            if sent > size:
                raise OSError(f"blob {digest} grew on disk while it was sent")
            yield chunk
    if sent != size:
        raise OSError(f"blob {digest} shrank on disk while it was sent ({sent} of {size})")
