"""Deployment routes: list, read, create, update, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from dagship.core.schemas import DeploymentCreate, DeploymentOut, DeploymentUpdate
from dagship.server import views
from dagship.server.deps import Admin, SessionDep, Viewer, WriteSessionDep
from dagship.server.services import access, deployments

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("")
def list_deployments(session: SessionDep, token: Viewer) -> list[DeploymentOut]:
    rows = deployments.list_deployments(session, token)
    return [views.deployment_out(deployment, current) for deployment, current in rows]


@router.get("/{name}")
def get_deployment(name: str, session: SessionDep, _token: Viewer) -> DeploymentOut:
    deployment = deployments.get_deployment(session, name)
    return views.deployment_out(deployment, deployments.current_deploy(session, deployment))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_deployment(
    body: DeploymentCreate, session: WriteSessionDep, token: Admin
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
    session.commit()
    return views.deployment_out(deployment, None)


@router.patch("/{name}")
def update_deployment(
    name: str, body: DeploymentUpdate, session: WriteSessionDep, _token: Admin
) -> DeploymentOut:
    airflow: dict[str, str | None] = {
        field: getattr(body, field)
        for field in ("airflow_url", "airflow_bundle")
        if field in body.model_fields_set
    }
    deployment = deployments.update_deployment(
        session, name, body.description, body.dag_deploys, airflow
    )
    out = views.deployment_out(deployment, deployments.current_deploy(session, deployment))
    session.commit()
    return out


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_deployment(name: str, session: WriteSessionDep, _token: Admin) -> Response:
    deployments.delete_deployment(session, name)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
