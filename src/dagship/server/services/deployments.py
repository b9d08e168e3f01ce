"""Deployments: the named Airflow environments deploys go to."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import and_, delete, select, update
from sqlalchemy.orm import Session

from dagship.core.vocabulary import AirflowUrlFrom, ErrorCode
from dagship.server.db.models import Agent, Deploy, Deployment, Token, utcnow
from dagship.server.errors import Conflict, NotFound
from dagship.server.services import airflow_access
from dagship.server.services.access import AuthToken


def get_deployment(session: Session, name: str, *, lock: bool = False) -> Deployment:
    """The deployment called `name`; with lock, its row is held until the transaction ends.

    The lock (SELECT ... FOR UPDATE) is what serializes deploys on PostgreSQL; SQLite
    ignores it and relies on write sessions starting with BEGIN IMMEDIATE.
    """
    query = select(Deployment).where(Deployment.name == name)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    deployment = session.scalar(query)
    if deployment is None:
        raise NotFound(
            f"deployment {name!r} does not exist",
            code=ErrorCode.DEPLOYMENT_NOT_FOUND,
            deployment=name,
        )
    return deployment


def current_deploy(session: Session, deployment: Deployment) -> Deploy | None:
    if deployment.current_seq == 0:
        return None
    return session.scalar(
        select(Deploy).where(
            Deploy.deployment_id == deployment.id, Deploy.seq == deployment.current_seq
        )
    )


def list_deployments(
    session: Session, viewer: AuthToken, limit: int, after: str | None = None
) -> list[tuple[Deployment, Deploy | None]]:
    """Up to ``limit`` deployments the token may see, sorted by name, after the one named
    ``after``, each with its current deploy."""
    query = (
        select(Deployment, Deploy)
        .outerjoin(
            Deploy,
            and_(Deploy.deployment_id == Deployment.id, Deploy.seq == Deployment.current_seq),
        )
        .order_by(Deployment.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Deployment.name > after)
    if viewer.deployment_id is not None:
        query = query.where(Deployment.id == viewer.deployment_id)
    return [(row[0], row[1]) for row in session.execute(query)]


def create_deployment(
    session: Session,
    name: str,
    description: str = "",
    dag_deploys: bool = True,
    airflow_url: str | None = None,
    airflow_bundle: str | None = None,
    airflow_url_from: AirflowUrlFrom = AirflowUrlFrom.ADMIN,
) -> Deployment:
    """A new deployment; ``airflow_url_from`` says who chose ``airflow_url``."""
    if session.scalar(select(Deployment.id).where(Deployment.name == name)) is not None:
        raise Conflict(f"deployment {name!r} already exists", code=ErrorCode.EXISTS)
    deployment = Deployment(
        name=name,
        description=description,
        dag_deploys=dag_deploys,
        current_seq=0,
        airflow_bundle=airflow_bundle or None,
    )
    airflow_access.set_url(deployment, airflow_url, airflow_url_from)
    session.add(deployment)
    session.flush()
    return deployment


def update_deployment(
    session: Session,
    name: str,
    description: str | None,
    dag_deploys: bool | None,
    airflow: Mapping[str, str | None] | None = None,
) -> Deployment:
    """Change the given fields; ``airflow`` holds ``airflow_url``/``airflow_bundle`` to set,
    where None or "" clears one. A URL set here is an admin's (the route checks)."""
    deployment = get_deployment(session, name, lock=True)
    if description is not None:
        deployment.description = description
    if dag_deploys is not None:
        deployment.dag_deploys = dag_deploys
    airflow = airflow or {}
    if "airflow_url" in airflow:
        airflow_access.set_url(deployment, airflow["airflow_url"], AirflowUrlFrom.ADMIN)
    if "airflow_bundle" in airflow:
        deployment.airflow_bundle = airflow["airflow_bundle"] or None
    session.flush()
    return deployment


def delete_deployment(session: Session, name: str) -> None:
    """Delete the deployment, its deploys and its agents; revoke its tokens but keep them
    for audit.

    Blobs and manifests stay: other deployments may use them.
    """
    deployment = get_deployment(session, name, lock=True)
    session.execute(
        update(Token)
        .where(Token.deployment_id == deployment.id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # The foreign key would also null this; saying it keeps the intent visible.
    session.execute(
        update(Token).where(Token.deployment_id == deployment.id).values(deployment_id=None)
    )
    session.execute(delete(Deploy).where(Deploy.deployment_id == deployment.id))
    session.execute(delete(Agent).where(Agent.deployment_id == deployment.id))
    session.delete(deployment)
    session.flush()
