"""Deploy references (``dagship.core.refs``) resolved to deploys: ``prod``, ``prod:5``,
``prod~1``, ``dpl_…``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dagship.core.refs import DeployRef, DeployRefError, parse_ref, unknown_deployment
from dagship.core.vocabulary import ErrorCode
from dagship.server.db.models import Deploy, Deployment
from dagship.server.errors import Invalid, NotFound
from dagship.server.services import access
from dagship.server.services.access import AuthToken
from dagship.server.services.deployments import current_deploy, get_deployment
from dagship.server.services.deploys import get_deploy, get_deploy_by_seq


def resolve_ref(session: Session, text: str, reader: AuthToken) -> Deploy:
    """The deploy ``text`` names, if ``reader`` may read it; Invalid for text that is no
    reference, NotFound (saying which forms exist) for one that names no deploy."""
    try:
        ref = parse_ref(text)
    except DeployRefError as exc:
        raise Invalid(str(exc)) from None
    if ref.deploy_id is not None:
        return get_deploy(session, ref.deploy_id, reader)
    access.check_deployment(reader, ref.deployment)
    deployment = _deployment(session, ref)
    if ref.seq is not None:
        return get_deploy_by_seq(session, deployment, ref.seq)
    current = current_deploy(session, deployment)
    if current is None:
        raise NotFound(
            f"deployment {deployment.name} has no deploys yet",
            code=ErrorCode.NO_DEPLOYS,
            deployment=deployment.name,
        )
    if ref.back == 0:
        return current
    if ref.back >= current.seq:
        raise NotFound(
            f"{ref.text} names no deploy: deployment {deployment.name} is at deploy "
            f"#{current.seq}, so {deployment.name}~{current.seq - 1} is its first"
        )
    return get_deploy_by_seq(session, deployment, current.seq - ref.back)


def _deployment(session: Session, ref: DeployRef) -> Deployment:
    try:
        return get_deployment(session, ref.deployment)
    except NotFound as exc:
        raise NotFound(
            unknown_deployment(ref.text, ref.deployment),
            code=exc.error_code,
            **exc.extra,
        ) from None
