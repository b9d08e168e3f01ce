"""Deployment routes: list, read, create, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from dagship.core.schemas import DeploymentCreate, DeploymentOut, DeploymentUpdate
from dagship.server import views
from dagship.server.api.paging import DEFAULT_LIMIT, LINKED, After, Limit, page
from dagship.server.db.models import Deployment
from dagship.server.deps import (
    Admin,
    SecretsDep,
    SessionDep,
    VerifiedTokensDep,
    Viewer,
    WriteSessionDep,
)
from dagship.server.services import access, agents, airflow_access, deployments

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("", responses=LINKED)
def list_deployments(
    request: Request,
    response: Response,
    session: SessionDep,
    token: Viewer,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[DeploymentOut]:
    """Deployments by name, a page at a time (``Link`` header to the next page)."""
    found_rows = deployments.list_deployments(session, token, limit + 1, after)
    rows = page(found_rows, limit, request, response, lambda row: row[0].name)
    found = agents.agents_by_deployment(session, (deployment.id for deployment, _ in rows))
    return [
        views.deployment_out(deployment, current, agents.agents_out(found.get(deployment.id, [])))
        for deployment, current in rows
    ]


@router.get("/{name}")
def get_deployment(name: str, session: SessionDep, _token: Viewer) -> DeploymentOut:
    deployment = deployments.get_deployment(session, name)
    return _deployment_out(session, deployment)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_deployment(
    body: DeploymentCreate, session: WriteSessionDep, token: Admin, box: SecretsDep
) -> DeploymentOut:
    access.check_unbound(token, "creating deployments")
    deployment = deployments.create_deployment(
        session,
        body.name,
        body.description,
        body.dag_deploys,
        airflow_url=body.airflow_url,
        airflow_bundle=body.airflow_bundle,
    )
    if body.airflow_credentials is not None:
        airflow_access.set_credentials(deployment, body.airflow_credentials, box)
    out = views.deployment_out(deployment, None)
    session.commit()
    return out


@router.patch("/{name}")
def update_deployment(
    name: str, body: DeploymentUpdate, session: WriteSessionDep, token: Admin, box: SecretsDep
) -> DeploymentOut:
    if body.airflow_url:
        access.check_may_choose_airflow_url(token)
    airflow: dict[str, str | None] = {
        field: getattr(body, field)
        for field in ("airflow_url", "airflow_bundle")
        if field in body.model_fields_set
    }
    guard: dict[str, object] = {
        field: getattr(body, field)
        for field in ("max_removal_ratio", "min_removals", "promote_only", "promote_from")
        if field in body.model_fields_set
    }
    deployment = deployments.update_deployment(
        session, name, body.description, body.dag_deploys, airflow, guard
    )
    if "airflow_credentials" in body.model_fields_set:
        airflow_access.set_credentials(deployment, body.airflow_credentials, box)
    out = _deployment_out(session, deployment)
    session.commit()
    return out


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(
    name: str, session: WriteSessionDep, _token: Admin, verified: VerifiedTokensDep
) -> Response:
    deployments.delete_deployment(session, name)
    session.commit()
    verified.forget_all()  # its tokens were revoked
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _deployment_out(session: Session, deployment: Deployment) -> DeploymentOut:
    """The deployment with its current deploy and its agents."""
    current = deployments.current_deploy(session, deployment)
    found = agents.agents_out(agents.list_agents(session, deployment))
    return views.deployment_out(deployment, current, found)
