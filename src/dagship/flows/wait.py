"""Waiting for a deploy to reach its deployment's agents and be parsed by its Airflow.

The server knows what the agents reported and asks Airflow (``GET /deploys/{id}/airflow``);
this polls it until the answer is final (parsed, failed, superseded, no agent, no Airflow) or
the timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagship.client.api import ApiClient
from dagship.core.schemas import DeployAirflowOut
from dagship.core.vocabulary import AirflowState

# (waited so far, pause between polls): a small change is usually parsed within seconds, so
# ask often at first; a slow Airflow needs no hammering.
POLL_SCHEDULE = ((10.0, 0.1), (60.0, 0.5))
SLOW_POLL_SECONDS = 1.0

StatusCallback = Callable[[DeployAirflowOut], None]


@dataclass(frozen=True)
class WaitResult:
    """The last answer of the server about a deploy in Airflow, and whether it came in time."""

    status: DeployAirflowOut
    timed_out: bool
    elapsed: float

    @property
    def state(self) -> AirflowState:
        return self.status.state

    @property
    def ok(self) -> bool:
        """True only when Airflow parsed every changed DAG file without an import error."""
        return not self.timed_out and self.state == AirflowState.PARSED

    def to_dict(self) -> dict[str, Any]:
        status = self.status.model_dump(mode="json")
        return {
            "state": status["state"],
            "timed_out": self.timed_out,
            "elapsed_seconds": round(self.elapsed, 3),
            "dags": status["dags"],
            "removed_dags": status["removed_dags"],
            "import_errors": status["import_errors"],
            "files": status["files"],
            "airflow_url": status["airflow_url"],
            "bundle_name": status["bundle_name"],
            "detail": status["detail"],
            "project_changed": status["project_changed"],
            "project_version": status["project_version"],
            "agents": status["agents"],
        }


def wait_for_airflow(
    client: ApiClient,
    deploy_id: str,
    timeout: float = 300.0,
    on_status: StatusCallback | None = None,
    started: float | None = None,
) -> WaitResult:
    """Poll the server until Airflow's answer about ``deploy_id`` is final or ``timeout``
    seconds (counted from ``started``, a ``time.monotonic()`` value, default now) pass."""
    started = time.monotonic() if started is None else started
    while True:
        status = client.deploy_airflow(deploy_id)
        if on_status is not None:
            on_status(status)
        elapsed = time.monotonic() - started
        if status.done:
            return WaitResult(status, False, elapsed)
        if elapsed >= timeout:
            return WaitResult(status, True, elapsed)
        time.sleep(max(0.0, min(poll_pause(elapsed), timeout - elapsed)))


def poll_pause(elapsed: float) -> float:
    """Seconds to wait before the next question, after ``elapsed`` seconds of waiting."""
    for until, pause in POLL_SCHEDULE:
        if elapsed < until:
            return pause
    return SLOW_POLL_SECONDS
