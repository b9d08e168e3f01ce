"""A deploy's new manifests as its request gives them: whole, or as a delta on the deployment's
current version of the tree (docs/api.md, "Manifest deltas").

Each is checked in two steps: what needs no database (entries, paths, counts) before the
deployment is locked, and the delta's base, which must be the current version, under the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dagship.core.manifest import Manifest, ManifestDelta, ManifestEntry, ManifestError
from dagship.core.schemas import ManifestDeltaIn
from dagship.core.vocabulary import ErrorCode
from dagship.server.errors import Conflict, Invalid, TooLarge
from dagship.server.services.manifests import load_manifest

# What a request gives for one tree, checked as far as it can be without the database.
Requested = Manifest | ManifestDelta


@dataclass(frozen=True)
class NewTree:
    """A tree's new manifest; ``delta`` when the request sent its changes from the current
    version (``delta.base``), which then has ``base_files`` files."""

    manifest: Manifest
    delta: ManifestDelta | None = None
    base_files: int = 0

    def new_entries(self) -> tuple[ManifestEntry, ...]:
        """The entries whose blobs this deploy may bring: the delta's, or every one."""
        return self.delta.changed if self.delta is not None else self.manifest.entries


def requested(
    items: list[dict[str, Any]] | None,
    delta: ManifestDeltaIn | None,
    tree: str,
    needed: bool,
    max_files: int,
) -> Requested | None:
    """The manifest (``{tree}_manifest``) or delta (``{tree}_delta``) a request gives for
    ``tree``; None when it gives neither. Raises Invalid or TooLarge."""
    field = f"{tree}_manifest"
    if items is not None and delta is not None:
        raise Invalid(f"give {field} or {tree}_delta, not both")
    if items is None and delta is None:
        if needed:
            raise Invalid(f"this kind of deploy needs {field} (or {tree}_delta)")
        return None
    if not needed:
        given = field if items is not None else f"{tree}_delta"
        raise Invalid(f"{given} is not part of this kind of deploy; leave it out or use full")
    if delta is not None:
        return _delta(delta, f"{tree}_delta", max_files)
    assert items is not None
    _check_count(field, len(items), max_files)
    try:
        return Manifest.from_dicts(items)
    except ManifestError as exc:
        raise Invalid(f"{field}: {exc}", code=ErrorCode.BAD_MANIFEST) from None


def resolve(
    session: Session, given: Requested, current_version: str | None, tree: str, max_files: int
) -> NewTree:
    """The new manifest ``given`` means, a delta applied to ``current_version`` (the
    deployment's current version of ``tree``, read under its lock). Raises Conflict when the
    delta was made against another version, Invalid when it does not apply or gives another
    version than it says, TooLarge when the manifest it gives is over ``max_files``."""
    if isinstance(given, Manifest):
        return NewTree(given)
    field = f"{tree}_delta"
    if given.base != current_version:
        raise Conflict(
            f"{field} was made against version {given.base}, but the deployment's current "
            f"{tree} version is {current_version or 'none (no deploy yet)'}: nothing was "
            f"changed; send the whole manifest ({tree}_manifest) or a delta against that version",
            code=ErrorCode.BASE_MISMATCH,
            base=given.base,
            current=current_version,
        )
    base = load_manifest(session, given.base)
    try:
        manifest = given.apply(base)
    except ManifestError as exc:
        raise Invalid(f"{field}: {exc}", code=ErrorCode.BAD_MANIFEST) from None
    _check_count(field, len(manifest), max_files, what="gives a manifest of")
    return NewTree(manifest, given, len(base))


def _delta(delta: ManifestDeltaIn, field: str, max_files: int) -> ManifestDelta:
    _check_count(field, len(delta.changed) + len(delta.removed), max_files, what="names")
    try:
        return ManifestDelta.from_dicts(delta.base, delta.version, delta.changed, delta.removed)
    except ManifestError as exc:
        raise Invalid(f"{field}: {exc}", code=ErrorCode.BAD_MANIFEST) from None


def _check_count(field: str, count: int, max_files: int, what: str = "has") -> None:
    if count > max_files:
        raise TooLarge(
            f"{field} {what} {count} files, over the server's limit of {max_files} "
            "(DAGSHIP_MAX_MANIFEST_FILES)",
            code=ErrorCode.MANIFEST_TOO_LARGE,
            max_files=max_files,
        )
