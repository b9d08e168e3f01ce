"""Database rows as the API's response models (``dagship.core.schemas``)."""

from __future__ import annotations

from collections.abc import Sequence

from dagship.core.schemas import (
    AgentOut,
    Checks,
    DeploymentOut,
    DeployOut,
    PreviewOut,
    S3Source,
    TokenOut,
)
from dagship.core.vocabulary import AgentState, AirflowUrlFrom, Component, Kind, Origin, Role
from dagship.server.db import models


def deploy_out(deploy: models.Deploy) -> DeployOut:
    return DeployOut(
        id=deploy.id,
        seq=deploy.seq,
        deployment=deploy.deployment.name,
        kind=Kind(deploy.kind),
        origin=Origin(deploy.origin),
        dags_version=deploy.dags_version,
        project_version=deploy.project_version,
        dags_files=deploy.dags_manifest.file_count,
        project_files=deploy.project_manifest.file_count,
        dags_removed=deploy.dags_removed,
        uploaded_files=deploy.uploaded_files,
        uploaded_bytes=deploy.uploaded_bytes,
        created_at=deploy.created_at,
        token_id=deploy.token_id,
        token_description=deploy.token.description if deploy.token else None,
        git_sha=deploy.git_sha,
        git_branch=deploy.git_branch,
        git_author=deploy.git_author,
        git_message=deploy.git_message,
        git_dirty=deploy.git_dirty,
        description=deploy.description,
        source_deploy_id=deploy.source_deploy_id,
        checks=Checks.model_validate(deploy.checks or {}),
        source_deployment=deploy.source_deployment,
        source_seq=deploy.source_seq,
        s3_source=S3Source.model_validate(deploy.s3_source) if deploy.s3_source else None,
    )


def deployment_out(
    deployment: models.Deployment,
    current: models.Deploy | None,
    agents: Sequence[AgentOut] = (),
) -> DeploymentOut:
    return DeploymentOut(
        name=deployment.name,
        description=deployment.description,
        dag_deploys=deployment.dag_deploys,
        airflow_url=deployment.airflow_url,
        airflow_url_from=_url_from(deployment),
        airflow_credentials_set=deployment.airflow_credentials is not None,
        airflow_bundle=deployment.bundle_name,
        created_at=deployment.created_at,
        preview_source=deployment.preview_source,
        preview_branch=deployment.preview_branch,
        max_removal_ratio=deployment.max_removal_ratio,
        min_removals=deployment.min_removals,
        promote_only=deployment.promote_only,
        promote_from=deployment.promote_from,
        current=deploy_out(current) if current else None,
        agents=list(agents),
    )


def agent_out(agent: models.Agent, *, active: bool) -> AgentOut:
    return AgentOut(
        id=agent.id,
        deployment=agent.deployment.name,
        host=agent.host,
        home=agent.home,
        components=[Component(name) for name in agent.components],
        state=AgentState(agent.state),
        project_version=agent.project_version,
        target_version=agent.target_version,
        error=agent.error,
        airflow_version=agent.airflow_version,
        first_seen_at=agent.first_seen_at,
        last_seen_at=agent.last_seen_at,
        active=active,
    )


def token_out(row: models.Token) -> TokenOut:
    return TokenOut(
        id=row.id,
        role=Role(row.role),
        deployment=row.deployment.name if row.deployment else None,
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def preview_out(deployment: models.Deployment, current: models.Deploy | None) -> PreviewOut:
    created = deployment.created_at
    return PreviewOut(
        name=deployment.name,
        source=deployment.preview_source or "",
        branch=deployment.preview_branch or "",
        airflow_url=deployment.airflow_url,
        airflow_url_from=_url_from(deployment),
        created_at=created,
        last_activity_at=max(created, current.created_at) if current else created,
        current=deploy_out(current) if current else None,
    )


def _url_from(deployment: models.Deployment) -> AirflowUrlFrom | None:
    if deployment.airflow_url is None:
        return None
    origin = deployment.airflow_url_from
    return AirflowUrlFrom(origin) if origin in list(AirflowUrlFrom) else AirflowUrlFrom.UNCONFIRMED
