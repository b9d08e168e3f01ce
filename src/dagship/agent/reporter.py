"""Telling the server what the agent does: ``PUT /deployments/{name}/agents/{id}``.

A report is also the agent's heartbeat (``dagship deploy --wait`` counts the agents seen in the
last minute): the agent reports on every turn of its loop, and while a step takes long (a build,
Airflow's start-up) a heartbeat thread sends the last report again every ``HEARTBEAT`` seconds.
A report that cannot be sent is logged and dropped: the next one sends the state as it is then.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.schemas import AgentReport
from dagship.core.vocabulary import AgentState, Component

log = logging.getLogger("dagship.agent")

ERROR_LIMIT = 20_000
HEARTBEAT = 15.0


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
    _sent_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        self.last = report
        return self._send(report)

    def _send(self, report: AgentReport) -> bool:
        with self._lock:
            self._sent_at = time.monotonic()  # a failed report is tried again a beat later
            try:
                self.client.report_agent(self.deployment, self.agent_id, report)
            except ApiError as exc:
                log.warning("could not report to the server: %s", exc)
                return False
            return True

    def keep_reporting(self, stop: threading.Event) -> threading.Thread:
        """Start the heartbeat thread: until ``stop`` is set, the last report is sent again
        whenever none was sent for ``HEARTBEAT`` seconds."""

        def beat() -> None:
            while not stop.wait(HEARTBEAT / 3):
                report = self.last
                if report is not None and time.monotonic() - self._sent_at >= HEARTBEAT:
                    self._send(report)

        thread = threading.Thread(target=beat, name="dagship-agent-heartbeat", daemon=True)
        thread.start()
        return thread
