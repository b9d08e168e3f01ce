"""Preview deployments: short-lived deployments made from another one for a branch.

A preview is a Deployment with ``preview_source`` and ``preview_branch`` set. It is named from
the branch (dagship.core.naming), starts out with its source's current versions (a
``promote`` deploy: no upload) and its source's Airflow URL or the server's template's, and
is deleted once it has been idle for the configured time:
"activity" is its creation and every deploy to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dagship.core.naming import PreviewNameError, preview_name
from dagship.core.vocabulary import AirflowUrlFrom, ErrorCode, Kind, Role
from dagship.server.db.models import Deploy, Deployment, utcnow
from dagship.server.errors import Conflict, Invalid, NotFound
from dagship.server.services import access
from dagship.server.services.access import AuthToken
from dagship.server.services.deployments import (
    create_deployment,
    current_deploy,
    delete_deployment,
    get_deployment,
)
from dagship.server.services.deploys import append_copy
from dagship.server.settings import preview_airflow_url

MANAGE = "managing previews"


@dataclass(frozen=True)
class Preview:
    deployment: Deployment
    current: Deploy | None

    @property
    def last_activity(self) -> datetime:
        if self.current is None:
            return self.deployment.created_at
        return max(self.deployment.created_at, self.current.created_at)


@dataclass(frozen=True)
class CreateResult:
    preview: Preview
    created: bool
    # The first deploy, with the source's versions; None if the source had none or it existed.
    deploy: Deploy | None


def check_may_manage(token: AuthToken) -> None:
    access.check_role(token, Role.OPERATOR, MANAGE)
    access.check_unbound(token, MANAGE)


def name_for(branch: str) -> str:
    try:
        return preview_name(branch)
    except PreviewNameError as exc:
        raise Invalid(str(exc)) from None


def create_preview(
    session: Session,
    token: AuthToken,
    source_name: str,
    branch: str,
    airflow_url: str | None = None,
    url_template: str | None = None,
) -> CreateResult:
    """Create the preview of `branch` from `source_name`, or report the one that exists.

    Its Airflow URL is ``airflow_url`` if given (admins only), else the server's
    ``url_template`` filled in, else the source's (services/airflow_access.py).
    """
    check_may_manage(token)
    if airflow_url:
        access.check_may_choose_airflow_url(token)
    name = name_for(branch)
    source = get_deployment(session, source_name)
    if source.preview_branch is not None:
        raise Invalid(
            f"deployment {source_name} is itself a preview (of {source.preview_source}); "
            "previews are made from a regular deployment",
            code=ErrorCode.SOURCE_IS_PREVIEW,
            deployment=source_name,
            preview_source=source.preview_source,
        )
    existing = session.scalar(select(Deployment).where(Deployment.name == name))
    if existing is not None:
        return _existing(session, existing, source_name, branch)
    try:
        # In a savepoint: CI may create the same preview from two pushes at once, and on
        # PostgreSQL the other one can commit after the check above, so this one finds the
        # name taken (Conflict) or fails on the unique name (IntegrityError).
        with session.begin_nested():
            deployment = create_deployment(
                session,
                name,
                description=f"Preview of {source_name} for branch {branch}",
                dag_deploys=source.dag_deploys,
                **_airflow_url(source, name, airflow_url, url_template),
            )
    except (IntegrityError, Conflict):
        return _existing(session, get_deployment(session, name), source_name, branch)
    deployment.preview_source = source_name
    deployment.preview_branch = branch
    copied = current_deploy(session, source)
    first = None
    if copied is not None:
        first = append_copy(
            session,
            deployment,
            copied,
            kind=Kind.FULL,
            token_id=token.id,
            description=f"preview of {source_name} for branch {branch}",
        )
    session.flush()
    return CreateResult(Preview(deployment, first), True, first)


def _existing(
    session: Session, existing: Deployment, source_name: str, branch: str
) -> CreateResult:
    """The preview that exists already, if it is this branch's of this source."""
    _check_same_preview(existing, source_name, branch)
    return CreateResult(Preview(existing, current_deploy(session, existing)), False, None)


def _airflow_url(
    source: Deployment, name: str, given: str | None, template: str | None
) -> dict[str, Any]:
    """The preview's Airflow URL and who chose it (create_deployment's arguments)."""
    if given:
        return {"airflow_url": given, "airflow_url_from": AirflowUrlFrom.ADMIN}
    if template is not None:
        url = preview_airflow_url(template, name=name, source=source.name)
        return {"airflow_url": url, "airflow_url_from": AirflowUrlFrom.TEMPLATE}
    if source.airflow_url is not None and source.airflow_url_from == AirflowUrlFrom.ADMIN:
        return {"airflow_url": source.airflow_url, "airflow_url_from": AirflowUrlFrom.SOURCE}
    return {"airflow_url": None}


def _check_same_preview(existing: Deployment, source_name: str, branch: str) -> None:
    name = existing.name
    if existing.preview_branch is None:
        raise Conflict(
            f"deployment {name} already exists and is not a preview",
            code=ErrorCode.PREVIEW_NAME_TAKEN,
            deployment=name,
        )
    if existing.preview_branch != branch:
        raise Conflict(
            f"preview {name} already exists for branch {existing.preview_branch!r}, whose name "
            f"gives the same preview name as {branch!r}",
            code=ErrorCode.PREVIEW_OF_OTHER_BRANCH,
            preview=name,
            branch=existing.preview_branch,
        )
    if existing.preview_source != source_name:
        raise Conflict(
            f"preview {name} of branch {branch!r} already exists, made from "
            f"{existing.preview_source}, not {source_name}",
            code=ErrorCode.PREVIEW_OF_OTHER_SOURCE,
            preview=name,
            branch=branch,
            source=existing.preview_source,
        )


def list_previews(
    session: Session,
    viewer: AuthToken | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> list[Preview]:
    """Previews the token may see (without one: all), sorted by name, after the one named
    ``after``, up to ``limit`` of them, with current deploys."""
    query = (
        select(Deployment, Deploy)
        .outerjoin(
            Deploy,
            and_(Deploy.deployment_id == Deployment.id, Deploy.seq == Deployment.current_seq),
        )
        .where(Deployment.preview_branch.is_not(None))
        .order_by(Deployment.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Deployment.name > after)
    if viewer is not None and viewer.deployment_id is not None:
        query = query.where(Deployment.id == viewer.deployment_id)
    return [Preview(row[0], row[1]) for row in session.execute(query)]


def delete_preview(session: Session, token: AuthToken, name: str) -> Preview:
    """Delete preview `name` (its deploys, and revoke its tokens); NotFound if there is none."""
    check_may_manage(token)
    deployment = session.scalar(select(Deployment).where(Deployment.name == name))
    if deployment is None:
        raise NotFound(
            f"there is no preview {name}", code=ErrorCode.PREVIEW_NOT_FOUND, preview=name
        )
    if deployment.preview_branch is None:
        raise Conflict(
            f"deployment {name} is not a preview, so deleting previews leaves it alone",
            code=ErrorCode.NOT_A_PREVIEW,
            deployment=name,
        )
    preview = Preview(deployment, current_deploy(session, deployment))
    delete_deployment(session, name)
    return preview


def delete_idle(session: Session, idle_seconds: float) -> list[Preview]:
    """Delete every preview whose last activity is older than `idle_seconds` ago."""
    cutoff = utcnow() - timedelta(seconds=idle_seconds)
    deleted = []
    for preview in list_previews(session):
        if preview.last_activity >= cutoff:
            continue
        # Re-read under the row lock: a deploy may have landed since the listing.
        try:
            deployment = get_deployment(session, preview.deployment.name, lock=True)
        except NotFound:
            continue
        fresh = Preview(deployment, current_deploy(session, deployment))
        if fresh.last_activity >= cutoff:
            continue
        delete_deployment(session, deployment.name)
        deleted.append(fresh)
    return deleted


def cleanup(session: Session, token: AuthToken, idle_seconds: float) -> list[Preview]:
    check_may_manage(token)
    return delete_idle(session, idle_seconds)
