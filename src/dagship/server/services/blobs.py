"""Blob bookkeeping: which digests the server holds, and who may read them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dagship.core.manifest import is_digest
from dagship.server.db.insert import insert_ignore
from dagship.server.db.models import Blob, Deploy, ManifestFile, utcnow
from dagship.server.errors import Invalid, NotFound
from dagship.server.services.access import AuthToken
from dagship.server.store.base import BlobStore

MAX_MISSING_QUERY = 100_000
# Well under SQLite's bound-parameter limit, and large enough to keep round trips few.
IN_CHUNK = 5_000


def check_digest(digest: str) -> None:
    if not is_digest(digest):
        raise Invalid(f"bad digest {digest[:80]!r}: expected 64 lowercase hex characters")


def stored_sizes(session: Session, digests: Sequence[str]) -> dict[str, int]:
    """Size of each stored blob among `digests`, looked up in bounded IN queries."""
    unique = list(dict.fromkeys(digests))
    sizes: dict[str, int] = {}
    # Table columns rather than ORM attributes: plain rows, without ORM loading overhead.
    blobs = Blob.__table__.c
    for chunk in chunked(unique, IN_CHUNK):
        rows = session.execute(select(blobs.digest, blobs.size).where(blobs.digest.in_(chunk)))
        sizes.update({digest: size for digest, size in rows.tuples()})
    return sizes


def missing_blobs(session: Session, store: BlobStore, digests: Sequence[str]) -> list[str]:
    """The digests the server does not hold whole, in request order, without repeats.

    A blob counts as held only if its file is in the store with the recorded size: one
    damaged or deleted on disk is reported missing, so the next deploy uploads it again.
    """
    if len(digests) > MAX_MISSING_QUERY:
        raise Invalid(f"ask about at most {MAX_MISSING_QUERY} digests at a time")
    for digest in digests:
        check_digest(digest)
    stored = stored_sizes(session, digests)
    return [
        digest
        for digest in dict.fromkeys(digests)
        if digest not in stored or not store.has(digest, stored[digest])
    ]


def record_blob(session: Session, digest: str, size: int) -> bool:
    """Note a blob now in the store; returns False if it was already recorded."""
    return (
        insert_ignore(session, Blob, [{"digest": digest, "size": size, "created_at": utcnow()}]) > 0
    )


def blob_size(session: Session, digest: str, reader: AuthToken) -> int:
    """The size of a blob `reader` may read; NotFound otherwise."""
    check_digest(digest)
    size = session.scalar(select(Blob.size).where(Blob.digest == digest))
    if size is None or not readable_among(session, reader, [digest]):
        raise NotFound(f"blob {digest} is not stored")
    return size


def readable_among(session: Session, reader: AuthToken, digests: Iterable[str]) -> set[str]:
    """The digests among ``digests`` that ``reader`` may read: all of them for a token not
    bound to a deployment; for a bound one, those in a manifest its deployment has deployed."""
    if reader.deployment_id is None:
        return set(digests)
    found: set[str] = set()
    for chunk in chunked(list(digests), IN_CHUNK):
        rows = session.execute(
            select(ManifestFile.digest)
            .join(
                Deploy,
                or_(
                    Deploy.dags_version == ManifestFile.version,
                    Deploy.project_version == ManifestFile.version,
                ),
            )
            .where(ManifestFile.digest.in_(chunk), Deploy.deployment_id == reader.deployment_id)
            .distinct()
        )
        found.update(rows.scalars())
    return found


def chunked(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
