"""``--wait``: follow a deploy until Airflow parsed it; progress and errors on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from dagship.cli.common import err, plural, short, show
from dagship.cli.hints import state_message
from dagship.core.vocabulary import AirflowState

if TYPE_CHECKING:
    from dagship.client.api import ApiClient
    from dagship.core.schemas import DeployAirflowOut, DeployOut
    from dagship.flows.wait import WaitResult


class Progress:
    """Prints one stderr line per step: uploaded → picked up → parsed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last: tuple[AirflowState, int] | None = None

    def __call__(self, status: DeployAirflowOut) -> None:
        key = (status.state, status.files.parsed)
        if not self.enabled or key == self._last:
            return
        self._last = key
        if status.state == AirflowState.WAITING:
            where = status.airflow_url or "Airflow"
            reason = "" if status.reachable else f" ({status.detail})"
            err.print(
                f"Waiting for Airflow at {where} to pick up {short(status.dags_version)}{reason}…"
            )
        elif status.state == AirflowState.PICKED_UP:
            expected = plural(status.files.expected, "DAG file")
            err.print(f"Picked up by Airflow: parsed {status.files.parsed} of {expected}…")
        elif status.state == AirflowState.PARSED:
            err.print(f"Parsed by Airflow: {plural(len(status.dags), 'DAG')}.")


def follow(
    api: ApiClient, deploy_id: str, timeout: float, quiet: bool, started: float
) -> WaitResult:
    from dagship.flows.wait import wait_for_airflow

    if not quiet:
        err.print(f"Following deploy {deploy_id} in Airflow (timeout {timeout:g}s).")
    return wait_for_airflow(api, deploy_id, timeout, Progress(not quiet), started=started)


def report(result: WaitResult, timeout: float) -> int:
    """Say how the wait ended on stderr (every import error in full) and return the exit code."""
    status = result.status
    if result.ok:
        dags = ", ".join(status.dags) or "no DAGs"
        err.print(f"Airflow parsed it in {result.elapsed:.1f}s: {dags}.")
        return 0
    errors = status.import_errors
    if errors:
        # Plain writes: tracebacks must reach CI logs verbatim, without wrapping.
        sys.stderr.write(
            f"Error: Airflow could not import {plural(len(errors), 'file')} of deploy "
            f"#{status.seq} ({status.deploy_id}):\n"
        )
        for error in errors:
            sys.stderr.write(f"\n--- {error.filename}\n{error.stack_trace.rstrip()}\n")
        sys.stderr.flush()
        if not result.timed_out:
            return 1
    if result.timed_out:
        pending = status.files.pending
        sys.stderr.write(
            f"Error: timed out after {timeout:g}s waiting for Airflow to parse deploy "
            f"#{status.seq} (state {status.state}"
            + (f"; not parsed yet: {', '.join(pending[:10])}" if pending else "")
            + f"): {state_message(status)}\n"
        )
        return 1
    if not errors:
        sys.stderr.write(f"Error: {state_message(status)}\n")
    return 1


def now() -> float:
    return time.monotonic()


def conclude(
    api: ApiClient,
    document: dict[str, Any],
    deploy: DeployOut | None,
    human: Callable[[], object],
    *,
    wait: bool,
    timeout: float,
    json: bool,
    started: float,
    verb: str = "Uploaded",
) -> None:
    """End a command that made (or kept) ``deploy``: show its result; with ``wait``, first
    follow the deploy until Airflow parsed it, then ``finish``."""
    if not wait or deploy is None:
        show(document, human, json)
        return
    if not json:
        human()
        err.print(f"{verb}: deploy #{deploy.seq} ({deploy.id}).")
    waited = follow(api, deploy.id, timeout, json, started)
    finish({**document, **_waited(waited)}, waited, timeout, json)


def finish(document: dict[str, Any], waited: WaitResult, timeout: float, json: bool) -> None:
    """End a command that waited: with ``--json`` its document, then, for everyone, how the
    wait ended on stderr; a failed wait exits with its code."""
    show(document, lambda: None, json)
    code = report(waited, timeout)
    if code:
        raise typer.Exit(code)


def _waited(waited: WaitResult) -> dict[str, Any]:
    """What a command that waited adds to its JSON: ``wait``, and its ``dags`` and
    ``import_errors`` (one shape for deploy, promote and preview deploy)."""
    wait_result = waited.to_dict()
    return {
        "wait": wait_result,
        "dags": wait_result["dags"],
        "import_errors": wait_result["import_errors"],
    }
