"""Telling the server what the agent does: ``PUT /deployments/{name}/agents/{id}``.

A report is also the agent's heartbeat (``dagship deploy --wait`` counts the agents seen in the
last minute), so the agent reports on every turn of its loop. A report that cannot be sent is
logged and dropped: the next turn sends the state as it is then.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.schemas import AgentReport
from dagship.core.vocabulary import AgentState, Component

log = logging.getLogger("dagship.agent")

ERROR_LIMIT = 20_000


@dataclass
class Reporter:
    client: ApiClient
    deployment: str
    agent_id: str
    home: str
    components: list[Component]
    airflow_version: str = ""
    # The last report sent, for the log (a state change is logged, a heartbeat is not).
    last: AgentReport | None = None

    def report(
        self,
        state: AgentState,
        project_version: str | None,
        target_version: str | None = None,
        error: str = "",
    ) -> bool:
        """Send the agent's state; False when the server could not take it."""
        report = AgentReport(
            host=socket.gethostname() or "host",
            home=self.home,
            components=self.components,
            state=state,
            project_version=project_version or "",
            target_version=target_version or "",
            error=error[-ERROR_LIMIT:],
            airflow_version=self.airflow_version,
        )
        if self.last is None or (self.last.state, self.last.target_version) != (
            report.state,
            report.target_version,
        ):
            log.info(
                "state %s (project version %s%s)",
                state,
                project_version or "none",
                f", applying {target_version}" if target_version else "",
            )
        try:
            self.client.report_agent(self.deployment, self.agent_id, report)
        except ApiError as exc:
            log.warning("could not report to the server: %s", exc)
            return False
        self.last = report
        return True
