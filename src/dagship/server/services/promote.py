"""Promotion: a new deploy on one deployment with another deployment's exact versions.

Like a rollback, nothing is uploaded and no manifest is made: the target runs the very bytes
the source deploy ran. The token needs what a deploy making the same change needs on the
target, and must be able to read the source.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dagship.core.kinds import Versions, choose_kind
from dagship.core.vocabulary import ErrorCode, Kind
from dagship.server.db.models import Deploy
from dagship.server.errors import Invalid, NotFound
from dagship.server.services import access, guard
from dagship.server.services.access import AuthToken
from dagship.server.services.deployments import current_deploy, get_deployment
from dagship.server.services.deploys import (
    append_copy,
    check_expected_seq,
    check_may_deploy,
    get_deploy_by_seq,
)


@dataclass(frozen=True)
class PromoteResult:
    source: Deploy
    # The new deploy; the target's current one when unchanged or a dry run.
    deploy: Deploy | None
    # dags, project or full: what the promotion changes; None when nothing.
    kind: Kind | None
    dry_run: bool

    @property
    def unchanged(self) -> bool:
        return self.kind is None


def promote(
    session: Session,
    token: AuthToken,
    target_name: str,
    source_name: str,
    *,
    seq: int | None = None,
    expect_seq: int | None = None,
    description: str | None = None,
    dry_run: bool = False,
) -> PromoteResult:
    if source_name == target_name:
        raise Invalid(
            f"cannot promote {target_name} to itself (a rollback goes back to an earlier deploy)",
            code=ErrorCode.PROMOTE_TO_ITSELF,
            deployment=target_name,
        )
    # Binding first: a token that may not touch either side learns nothing about them.
    access.check_deployment(token, target_name)
    access.check_deployment(token, source_name)
    source = source_deploy(session, source_name, seq)

    target = get_deployment(session, target_name, lock=True)
    guard.check_promotion_source(token, target, source_name)
    check_expected_seq(target, expect_seq)
    current = current_deploy(session, target)
    kind = choose_kind(
        Versions(current.dags_version, current.project_version) if current else None,
        Versions(source.dags_version, source.project_version),
        dag_deploys=target.dag_deploys,
    )
    # The role a deploy of the same change needs; a no-op still needs a deploying token.
    check_may_deploy(token, target_name, kind or Kind.DAGS)
    if kind is None or dry_run:
        return PromoteResult(source=source, deploy=current, kind=kind, dry_run=dry_run)
    deploy = append_copy(
        session, target, source, kind=kind, token_id=token.id, description=description
    )
    return PromoteResult(source=source, deploy=deploy, kind=kind, dry_run=False)


def source_deploy(session: Session, name: str, seq: int | None) -> Deploy:
    """Deploy `seq` of deployment `name`, by default its current one."""
    deployment = get_deployment(session, name)
    if seq is not None:
        return get_deploy_by_seq(session, deployment, seq)
    current = current_deploy(session, deployment)
    if current is None:
        raise NotFound(
            f"deployment {name} has no deploys yet, so there is nothing to promote",
            code=ErrorCode.NO_DEPLOYS,
            deployment=name,
        )
    return current
