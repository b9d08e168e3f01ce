"""Deploy references as users write them: ``dev`` (its current deploy), ``dev:5``, ``dpl_…``.

Deployment names cannot contain ``_`` or ``:``, so the three forms never overlap.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dagship.core.vocabulary import ErrorCode
from dagship.server.db.models import Deploy
from dagship.server.errors import Invalid, NotFound
from dagship.server.services import access
from dagship.server.services.access import AuthToken
from dagship.server.services.deployments import current_deploy, get_deployment
from dagship.server.services.deploys import get_deploy, get_deploy_by_seq


def resolve_ref(session: Session, ref: str, reader: AuthToken) -> Deploy:
    ref = ref.strip()
    if ref.startswith("dpl_"):
        return get_deploy(session, ref, reader)
    name, colon, seq_text = ref.partition(":")
    if not name or (colon and not seq_text.isdigit()):
        raise Invalid(
            f"{ref!r} is not a deploy reference: use a deployment name (its current deploy), "
            "NAME:SEQ (e.g. prod:5) or a deploy id (dpl_…)"
        )
    access.check_deployment(reader, name)
    deployment = get_deployment(session, name)
    if colon:
        return get_deploy_by_seq(session, deployment, int(seq_text))
    current = current_deploy(session, deployment)
    if current is None:
        raise NotFound(
            f"deployment {name} has no deploys yet", code=ErrorCode.NO_DEPLOYS, deployment=name
        )
    return current
