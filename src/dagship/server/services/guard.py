"""Guard rails (docs/guard-rails.md): deploys that would wipe or gut a deployment's
DAG bundle, and direct changes to deployments that take promotions only.

A deploy that leaves the DAG bundle empty while the current deploy has DAG files needs
``allow_empty``; one that removes more than the deployment's ``max_removal_ratio`` of the
current DAG files, and at least ``min_removals`` of them, needs ``allow_removals``. Both are
409s carrying ``removed_files`` and a ``sample`` of the removed paths. Rollbacks and promotions
are not guarded: they bring back bytes that a deployment already ran.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagship.core.vocabulary import ErrorCode, Role
from dagship.server.db.models import Deployment, ManifestFile
from dagship.server.errors import Conflict, Forbidden
from dagship.server.services.access import AuthToken
from dagship.server.services.trees import NewTree

# How many removed paths a refusal lists.
SAMPLE_SIZE = 10


def check_removals(
    session: Session,
    deployment: Deployment,
    current_version: str | None,
    new: NewTree,
    *,
    allow_empty: bool,
    allow_removals: bool,
) -> None:
    """Refuse a deploy of DAG bundle ``new`` over ``current_version`` that the guard stops."""
    if current_version is None:
        return
    if new.delta is not None:
        # A delta is made against the current version: it names what it removes.
        removed, current_files = sorted(new.delta.removed), new.base_files
    else:
        current = set(
            session.scalars(
                select(ManifestFile.path).where(ManifestFile.version == current_version)
            )
        )
        removed = sorted(current - {entry.path for entry in new.manifest.entries})
        current_files = len(current)
    if not removed:
        return
    _check_removed(
        deployment, removed, current_files, len(new.manifest), allow_empty, allow_removals
    )


def _check_removed(
    deployment: Deployment,
    removed: list[str],
    current_files: int,
    new_files: int,
    allow_empty: bool,
    allow_removals: bool,
) -> None:
    name, sample = deployment.name, removed[:SAMPLE_SIZE]
    fields = {"deployment": name, "removed_files": len(removed), "current_files": current_files}
    if not new_files and not allow_empty:
        raise Conflict(
            f"this deploy leaves deployment {name}'s DAG bundle empty: all {len(removed)} DAG "
            f"file(s) of the current deploy would be removed (e.g. {', '.join(sample[:3])}); "
            "deploy it with allow_empty if that is meant",
            code=ErrorCode.EMPTY_DEPLOY,
            sample=sample,
            **fields,
        )
    ratio = deployment.max_removal_ratio
    too_many = len(removed) > ratio * current_files and len(removed) >= deployment.min_removals
    if new_files and too_many and not allow_removals:
        raise Conflict(
            f"this deploy removes {len(removed)} of the {current_files} DAG files of deployment "
            f"{name} (more than {ratio:.0%}, its max_removal_ratio), e.g. "
            f"{', '.join(sample[:3])}; deploy it with allow_removals if that is meant",
            code=ErrorCode.TOO_MANY_REMOVALS,
            sample=sample,
            max_removal_ratio=ratio,
            **fields,
        )


def count_removed(session: Session, old_version: str | None, new_version: str) -> int:
    """How many files of manifest ``old_version`` manifest ``new_version`` does not have."""
    if old_version is None or old_version == new_version:
        return 0
    kept = select(ManifestFile.path).where(ManifestFile.version == new_version)
    query = select(func.count()).where(
        ManifestFile.version == old_version, ManifestFile.path.not_in(kept)
    )
    return int(session.scalar(query) or 0)


def check_direct_change(token: AuthToken, deployment: Deployment, action: str) -> None:
    """Refuse a direct deploy or rollback (``action``) of a promote-only deployment to a token
    that is not admin."""
    if not deployment.promote_only or token.role.allows(Role.ADMIN):
        return
    source = deployment.promote_from
    raise Forbidden(
        f"deployment {deployment.name} takes promotions only "
        f"({'from ' + source if source else 'from any deployment'}); {action} need an admin "
        "token",
        code=ErrorCode.PROMOTE_ONLY,
        deployment=deployment.name,
        promote_from=source,
        role=token.role,
    )


def check_promotion_source(token: AuthToken, deployment: Deployment, source: str) -> None:
    """Refuse a promotion into a promote-only deployment from another source than its own,
    unless the token is admin."""
    wanted = deployment.promote_from
    if not deployment.promote_only or not wanted or source == wanted:
        return
    if token.role.allows(Role.ADMIN):
        return
    raise Forbidden(
        f"deployment {deployment.name} takes promotions from {wanted} only, not from {source}; "
        "other promotions need an admin token",
        code=ErrorCode.PROMOTE_ONLY,
        deployment=deployment.name,
        promote_from=wanted,
        source=source,
        role=token.role,
    )
