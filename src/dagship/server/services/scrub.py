"""`dagship server scrub`: read every stored blob back and set aside the damaged ones.

A blob is damaged when its bytes no longer hash to its name (edited, truncated or rotted on
disk). It is moved to the store's quarantine folder and its row is deleted, so
`POST /blobs/missing` reports it missing and the next deploy that needs it uploads it again;
a deploy committed before then is refused with `missing_blobs` rather than served bad bytes.
Rows whose file has vanished are deleted the same way. Safe while the server runs: uploads
only ever replace a file by a whole one, and a file replaced since it was hashed is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from dagship.server.db.engine import Database
from dagship.server.db.models import Blob
from dagship.server.services.blobs import IN_CHUNK, chunked
from dagship.server.store.local import LocalBlobStore


@dataclass(frozen=True)
class DamagedBlob:
    digest: str
    # What the bytes on disk hash to, and how many there are.
    actual: str
    size: int
    quarantined_to: Path


@dataclass
class ScrubReport:
    checked: int = 0
    checked_bytes: int = 0
    damaged: list[DamagedBlob] = field(default_factory=list)
    # Recorded blobs whose file is gone from the store.
    vanished: list[str] = field(default_factory=list)
    # Everything in the quarantine folder, from this scrub and earlier ones.
    quarantined_total: int = 0

    @property
    def clean(self) -> bool:
        return not self.damaged and not self.vanished


def scrub(database: Database, store: LocalBlobStore) -> ScrubReport:
    """Re-hash every blob in `store`; quarantine the damaged ones and forget them and the
    vanished ones in `database`."""
    report = ScrubReport()
    on_disk: set[str] = set()
    for digest in store.digests():
        found = store.hash(digest)
        if found is None:
            continue
        on_disk.add(digest)
        report.checked += 1
        report.checked_bytes += found.size
        if found.whole:
            continue
        target = store.quarantine(found)
        if target is not None:
            report.damaged.append(DamagedBlob(digest, found.actual, found.size, target))
    report.vanished = _vanished(database, store, on_disk)
    _forget(database, store, [bad.digest for bad in report.damaged] + report.vanished)
    report.quarantined_total = store.quarantined()
    return report


def _vanished(database: Database, store: LocalBlobStore, on_disk: set[str]) -> list[str]:
    with database.read_session() as session:
        recorded = session.scalars(select(Blob.digest)).all()
    # Checked again: an upload may have stored its file since the store was listed.
    return [d for d in recorded if d not in on_disk and not store.exists(d)]


def _forget(database: Database, store: LocalBlobStore, digests: list[str]) -> None:
    """Delete the rows of blobs that are not in the store (any put back since are kept)."""
    gone = [digest for digest in digests if not store.exists(digest)]
    for chunk in chunked(gone, IN_CHUNK):
        with database.writing() as session:
            session.execute(delete(Blob).where(Blob.digest.in_(chunk)))
