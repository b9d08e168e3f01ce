"""Agent routes: an agent reports what it runs; anyone who may read a deployment lists them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dagship.core.schemas import AGENT_ID, AgentOut, AgentReport
from dagship.server.deps import Reporter, SessionDep, Viewer, WriteSessionDep
from dagship.server.services import agents, deployments

router = APIRouter(prefix="/deployments/{name}/agents", tags=["agents"])

AgentId = Annotated[
    str, Path(pattern=AGENT_ID, description="The agent's id: its host and a hash of its home")
]


@router.put("/{agent_id:path}")
def report_agent(
    name: str, agent_id: AgentId, body: AgentReport, session: WriteSessionDep, _token: Reporter
) -> AgentOut:
    """Record what the agent runs now (a viewer token bound to the deployment may do this)."""
    agent = agents.report_agent(session, name, agent_id, body)
    (out,) = agents.agents_out([agent])
    session.commit()
    return out


@router.get("")
def list_agents(name: str, session: SessionDep, _token: Viewer) -> list[AgentOut]:
    deployment = deployments.get_deployment(session, name)
    return agents.agents_out(agents.list_agents(session, deployment))
