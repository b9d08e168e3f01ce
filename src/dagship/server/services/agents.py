"""Agents: what each ``dagship agent`` of a deployment last reported, and whether a deploy's
project version has reached them all (docs/agent.md).

An agent reports itself with ``PUT /deployments/{name}/agents/{agent_id}`` whenever its state
changes and at least every few seconds; one row per agent keeps its last report. An agent is
*active* while its last report is less than ``ACTIVE_SECONDS`` old: only active agents count
when ``--wait`` follows a deploy that changes the project.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dagship.core.manifest import EMPTY_VERSION
from dagship.core.schemas import AgentOut, AgentReport
from dagship.core.vocabulary import AirflowState
from dagship.server import views
from dagship.server.db.insert import insert_ignore
from dagship.server.db.models import Agent, Deploy, Deployment, utcnow
from dagship.server.services.deployments import get_deployment

# An agent reports at least every few seconds; one silent for a minute is gone (stopped,
# its host down), and a deploy no longer waits for it.
ACTIVE_SECONDS = 60.0


def report_agent(session: Session, name: str, agent_id: str, report: AgentReport) -> Agent:
    """Record ``report`` as agent ``agent_id``'s last report: the first one adds the agent."""
    deployment = get_deployment(session, name)
    now = utcnow()
    fields = report.model_dump(mode="json")
    # Insert-or-update that two concurrent first reports cannot turn into a duplicate key.
    added = insert_ignore(
        session,
        Agent,
        [
            {
                "deployment_id": deployment.id,
                "id": agent_id,
                **fields,
                "first_seen_at": now,
                "last_seen_at": now,
            }
        ],
    )
    if not added:
        session.execute(
            update(Agent)
            .where(Agent.deployment_id == deployment.id, Agent.id == agent_id)
            .values(**fields, last_seen_at=now)
        )
    agent = session.scalar(
        select(Agent)
        .where(Agent.deployment_id == deployment.id, Agent.id == agent_id)
        .execution_options(populate_existing=True)
    )
    assert agent is not None
    return agent


def list_agents(session: Session, deployment: Deployment) -> list[Agent]:
    """The deployment's agents, newest report first."""
    return list(
        session.scalars(
            select(Agent)
            .where(Agent.deployment_id == deployment.id)
            .order_by(Agent.last_seen_at.desc(), Agent.id)
        )
    )


def agents_by_deployment(session: Session, deployment_ids: Iterable[int]) -> dict[int, list[Agent]]:
    """The agents of each deployment (id), newest report first, in one query."""
    found: dict[int, list[Agent]] = {}
    ids = list(deployment_ids)
    if not ids:
        return found
    rows = session.scalars(
        select(Agent)
        .where(Agent.deployment_id.in_(ids))
        .order_by(Agent.last_seen_at.desc(), Agent.id)
    )
    for agent in rows:
        found.setdefault(agent.deployment_id, []).append(agent)
    return found


def active_since(now: datetime) -> datetime:
    """Agents whose last report is at or after this time are active."""
    return now - timedelta(seconds=ACTIVE_SECONDS)


def agents_out(agents: Iterable[Agent], now: datetime | None = None) -> list[AgentOut]:
    since = active_since(now or utcnow())
    return [views.agent_out(agent, active=agent.last_seen_at >= since) for agent in agents]


@dataclass(frozen=True)
class Rollout:
    """Where a deploy's project version is on the deployment's agents.

    ``state`` is None when the deploy leaves the project as it was, or every active agent
    runs its version: then the DAG check decides.
    """

    changed: bool
    version: str
    agents: list[AgentOut] = field(default_factory=list)
    state: AirflowState | None = None
    detail: str = ""


def rollout(session: Session, deploy: Deploy) -> Rollout:
    """Whether deploy ``deploy`` changes the project and, if so, how far its active agents are."""
    deployment = deploy.deployment
    version = deploy.project_version
    previous = session.scalar(
        select(Deploy.project_version).where(
            Deploy.deployment_id == deploy.deployment_id, Deploy.seq == deploy.seq - 1
        )
    )
    changed = version != (previous or EMPTY_VERSION)
    active = [agent for agent in agents_out(list_agents(session, deployment)) if agent.active]
    if not changed:
        return Rollout(changed, version, active)
    current = deployment.current_seq == deploy.seq
    state, detail = _rollout_state(deployment.name, deploy.seq, version, active, current)
    return Rollout(changed, version, active, state, detail)


def _rollout_state(
    name: str, seq: int, version: str, active: list[AgentOut], current: bool
) -> tuple[AirflowState | None, str]:
    """The deploy's state while its project version is not on every active agent."""
    failed = [agent for agent in active if agent.failed_on(version)]
    behind = [agent for agent in active if not agent.runs(version)]
    if failed:
        return AirflowState.FAILED, "; ".join(
            f"agent {agent.id} on {agent.host} failed to apply project version {version}: "
            f"{agent.error_line or 'no error reported'}"
            for agent in failed
        )
    if (behind or not active) and not current:
        return AirflowState.SUPERSEDED, (
            f"deploy #{seq} is no longer the current deploy of {name} and its agents had not "
            "switched to its project version"
        )
    if not active:
        return AirflowState.NO_AGENT, (
            f"no agent of deployment {name} has reported in the last minute, so nothing "
            f"applies project version {version}"
        )
    if behind:
        return AirflowState.APPLYING, (
            f"{len(active) - len(behind)} of {len(active)} agent(s) run project version "
            f"{version}; waiting for " + ", ".join(agent.host for agent in behind)
        )
    return None, ""
