"""`dagship server gc`: delete blobs that no deploy within retention needs.

A blob is deleted only if all of these hold:

- its file was last written or used more than `older_than` ago (an upload writes it;
  `POST /blobs/missing` marks the blobs it reports present, at most every 30 minutes), so
  blobs of a deploy being uploaded right now are kept, including the ones the client was
  told it need not send (it has 30 minutes at least to commit);
- no deploy created within `older_than` uses it, in its DAG bundle or its project;
- it is not in the current deploy of any deployment (previews included), however old.

The decision is taken again inside a write transaction that holds the deploys back
(PostgreSQL: `LOCK TABLE deployments IN EXCLUSIVE MODE`; SQLite: the write lock), and the
rows are deleted there; the files go after the commit, each only if still untouched. A
deploy committed after that finds the rows gone and is refused with `missing_blobs`, so
the client uploads again: nothing partial becomes current. Files without a row (an upload
interrupted between its file and its row) are deleted by the same rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, or_, select, text
from sqlalchemy.orm import Session

from dagship.core.durations import format_duration
from dagship.core.errors import InvalidValueError
from dagship.server.db.engine import Database
from dagship.server.db.models import Blob, Deploy, Deployment, ManifestFile, utcnow
from dagship.server.services.blobs import IN_CHUNK, chunked
from dagship.server.store.local import USED_MARK_SECONDS, LocalBlobStore

# Shorter retention could delete a blob between a client's "which blobs are missing?" and
# its commit. /blobs/missing refreshes a blob's mark once it is USED_MARK_SECONDS old, so
# with twice that a client has at least USED_MARK_SECONDS (30 minutes) to commit.
MIN_OLDER_THAN = 2 * USED_MARK_SECONDS


@dataclass
class GcReport:
    older_than: float
    dry_run: bool
    # Blob files in the store, and how many of them were old enough to consider.
    stored: int = 0
    old: int = 0
    # Old blobs kept because a deploy within retention or a current deploy uses them.
    kept: int = 0
    removed: list[str] = field(default_factory=list)
    removed_bytes: int = 0


def collect(
    database: Database, store: LocalBlobStore, older_than: float, *, dry_run: bool = False
) -> GcReport:
    """Delete (or with `dry_run`, only list) the blobs no deploy within retention needs."""
    if older_than < MIN_OLDER_THAN:
        raise InvalidValueError(
            f"--older-than {format_duration(older_than)} is too short: blobs of a deploy being "
            f"uploaded could go; use at least {format_duration(MIN_OLDER_THAN)}"
        )
    report = GcReport(older_than=older_than, dry_run=dry_run)
    cutoff = time.time() - older_than
    old = []
    for digest in store.digests():
        report.stored += 1
        mtime = store.mtime(digest)
        if mtime is not None and mtime < cutoff:
            old.append(digest)
    report.old = len(old)
    since = utcnow() - timedelta(seconds=older_than)
    if dry_run:
        with database.read_session() as session:
            doomed = _unused(session, store, old, since, cutoff)
    else:
        with database.writing() as session:
            _hold_deploys(session)
            doomed = _unused(session, store, old, since, cutoff)
            for chunk in chunked(doomed, IN_CHUNK):
                session.execute(delete(Blob).where(Blob.digest.in_(chunk)))
    report.kept = len(old) - len(doomed)
    for digest in doomed:
        size = store.size(digest)
        if dry_run or store.remove(digest, cutoff):
            report.removed.append(digest)
            report.removed_bytes += size or 0
    return report


def _hold_deploys(session: Session) -> None:
    """Make deploys, promotions, rollbacks and new previews wait for this transaction
    (on SQLite the write transaction already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE deployments IN EXCLUSIVE MODE"))


def _unused(
    session: Session, store: LocalBlobStore, digests: list[str], since: datetime, cutoff: float
) -> list[str]:
    used: set[str] = set()
    for chunk in chunked(digests, IN_CHUNK):
        used.update(session.scalars(_used_among(chunk, since)))
    # Checked again now that deploys are held: a client may have been told since that
    # one of them is present.
    return [d for d in digests if d not in used and (mtime := store.mtime(d)) and mtime < cutoff]


def _used_among(digests: list[str], since: datetime) -> Select[str]:
    return (
        select(ManifestFile.digest)
        .join(
            Deploy,
            or_(
                Deploy.dags_version == ManifestFile.version,
                Deploy.project_version == ManifestFile.version,
            ),
        )
        .join(Deployment, Deployment.id == Deploy.deployment_id)
        .where(
            ManifestFile.digest.in_(digests),
            or_(Deploy.created_at >= since, Deploy.seq == Deployment.current_seq),
        )
        .distinct()
    )
