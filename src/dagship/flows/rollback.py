"""Undoing a deploy that failed in Airflow: ``--rollback-on-failure``.

A deploy fails in Airflow when Airflow reports import errors for its DAG version, or when an
agent fails to apply its project version. Then the deployment goes back to the deploy before
it with the server's rollback (a new deploy, recording why in its description), and the
rollback is followed until it is live, as ``--wait`` follows any deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagship.client.api import ApiClient
from dagship.client.errors import ClientError
from dagship.core.schemas import DeployAirflowOut, RollbackOut
from dagship.core.vocabulary import AirflowState
from dagship.flows.wait import StatusCallback, WaitResult, wait_for_airflow

# The reason recorded in the rollback deploy's description stays readable in a list.
MAX_REASON = 300
_LISTED_FILES = 3


@dataclass(frozen=True)
class AutoRollback:
    """What ``rollback_failed`` did: the failed deploy's last status and why it failed, then
    either the rollback and its wait, or ``error``, why it could not roll back."""

    failed: DeployAirflowOut
    reason: str
    rollback: RollbackOut | None = None
    waited: WaitResult | None = None
    error: str | None = None

    @property
    def to_seq(self) -> int:
        """The deploy whose versions the deployment goes back to: the one before."""
        return self.failed.seq - 1

    @property
    def live(self) -> bool:
        """True when the rollback was made and Airflow runs it without errors."""
        return self.waited is not None and self.waited.ok

    def to_dict(self) -> dict[str, Any]:
        deploy = self.rollback.deploy if self.rollback is not None else None
        return {
            "failed_seq": self.failed.seq,
            "reason": self.reason,
            "to_seq": self.to_seq,
            "deploy": deploy.model_dump(mode="json") if deploy is not None else None,
            "unchanged": self.rollback.unchanged if self.rollback is not None else None,
            "live": self.live,
            "wait": self.waited.to_dict() if self.waited is not None else None,
            "error": self.error,
        }


def failure(status: DeployAirflowOut) -> str | None:
    """Why the deploy failed in Airflow, in one line (the files Airflow could not import, or
    the agents that could not apply it); None when it did not fail (or not yet)."""
    if status.state != AirflowState.FAILED:
        return None
    errors = status.import_errors
    if not errors:
        return status.detail  # the agents' errors, one line each
    files = ", ".join(error.filename for error in errors[:_LISTED_FILES])
    if len(errors) > _LISTED_FILES:
        files += f" and {len(errors) - _LISTED_FILES} more"
    last = [line.strip() for line in errors[0].stack_trace.splitlines() if line.strip()]
    return f"Airflow could not import {files}" + (f" ({last[-1]})" if last else "")


def description(status: DeployAirflowOut, reason: str) -> str:
    """What the rollback deploy records as its reason."""
    text = f"automatic rollback: deploy #{status.seq} failed in Airflow: {reason}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def rollback_failed(
    client: ApiClient,
    status: DeployAirflowOut,
    timeout: float,
    on_status: StatusCallback | None = None,
) -> AutoRollback | None:
    """Roll the deployment back to the deploy before the failed one (``status``, the wait's
    last answer) and wait up to ``timeout`` seconds for the rollback to be live.

    None when the deploy did not fail in Airflow (a timeout, no Airflow: nothing is known to
    be broken). The rollback expects the failed deploy to be still the current one, so a
    deploy made in between is never undone; any refusal is the result's ``error``."""
    reason = failure(status)
    if reason is None:
        return None
    if status.seq <= 1:
        return AutoRollback(
            status,
            reason,
            error=f"deploy #{status.seq} is the first deploy of {status.deployment}: there is "
            "no earlier deploy to roll back to",
        )
    try:
        result = client.rollback(
            status.deployment,
            status.seq - 1,
            expect_seq=status.seq,
            description=description(status, reason),
        )
    except ClientError as exc:
        return AutoRollback(status, reason, error=str(exc))
    if result.unchanged:
        return AutoRollback(
            status,
            reason,
            result,
            error=f"deploy #{status.seq - 1} has the same versions as the failed deploy",
        )
    waited = wait_for_airflow(client, result.deploy.id, timeout, on_status)
    return AutoRollback(status, reason, result, waited)
