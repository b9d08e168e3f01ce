"""Rollback: a new deploy that points at an earlier deploy's versions.

No upload and no new manifest: the exact bytes deployed before come back, and the
history stays append-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dagship.core.kinds import Versions, choose_kind
from dagship.core.vocabulary import Origin
from dagship.server.db.models import Deploy
from dagship.server.errors import Conflict
from dagship.server.services import guard
from dagship.server.services.access import AuthToken
from dagship.server.services.deployments import current_deploy, get_deployment
from dagship.server.services.deploys import (
    append_deploy,
    check_expected_seq,
    check_still_stored,
    get_deploy_by_seq,
)


@dataclass(frozen=True)
class RollbackResult:
    """The new deploy (the current one when ``unchanged``) and the earlier deploy whose
    versions it runs."""

    deploy: Deploy
    unchanged: bool
    source: Deploy


def rollback(
    session: Session,
    token: AuthToken,
    name: str,
    *,
    to_seq: int | None = None,
    expect_seq: int | None = None,
    description: str | None = None,
) -> RollbackResult:
    deployment = get_deployment(session, name, lock=True)
    guard.check_direct_change(token, deployment, "rollbacks")
    check_expected_seq(deployment, expect_seq)
    current = current_deploy(session, deployment)
    target_seq = deployment.current_seq - 1 if to_seq is None else to_seq
    if current is None or (to_seq is None and target_seq < 1):
        raise Conflict(
            f"deployment {name} has no earlier deploy to roll back to "
            f"(it is at deploy {deployment.current_seq})"
        )
    target = get_deploy_by_seq(session, deployment, target_seq)
    kind = choose_kind(
        Versions(current.dags_version, current.project_version),
        Versions(target.dags_version, target.project_version),
        dag_deploys=deployment.dag_deploys,
    )
    if kind is None:
        return RollbackResult(deploy=current, unchanged=True, source=target)
    check_still_stored(session, target)
    deploy = append_deploy(
        session,
        deployment,
        kind=kind,
        origin=Origin.ROLLBACK,
        dags_version=target.dags_version,
        project_version=target.project_version,
        token_id=token.id,
        uploaded_files=0,
        uploaded_bytes=0,
        description=description,
        source_deploy_id=target.id,
    )
    return RollbackResult(deploy=deploy, unchanged=False, source=target)
