"""``--wait``: follow a deploy until Airflow parsed it; progress and errors on stderr."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dagship.cli.common import err, plural, print_json, short

if TYPE_CHECKING:
    from dagship.client.api import ApiClient
    from dagship.flows.wait import WaitResult

TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1, help="With --wait: give up after this many seconds (exit 1)."),
]


class Progress:
    """Prints one stderr line per step: uploaded → picked up → parsed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last: tuple[str, int] | None = None

    def __call__(self, status: dict[str, Any]) -> None:
        files = status.get("files") or {}
        key = (str(status.get("state")), int(files.get("parsed") or 0))
        if not self.enabled or key == self._last:
            return
        self._last = key
        state, parsed = key
        expected = int(files.get("expected") or 0)
        if state == "waiting":
            where = status.get("airflow_url") or "Airflow"
            reason = "" if status.get("reachable", True) else f" ({status.get('detail')})"
            err.print(
                f"Waiting for Airflow at {where} to pick up {short(status['dags_version'])}"
                f"{reason}…"
            )
        elif state == "picked_up":
            err.print(
                f"Picked up by Airflow: parsed {parsed} of {plural(expected, 'changed DAG file')}…"
            )
        elif state == "parsed":
            err.print(f"Parsed by Airflow: {plural(len(status.get('dags') or []), 'DAG')}.")


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
        dags = status.get("dags") or []
        err.print(f"Airflow parsed it in {result.elapsed:.1f}s: {', '.join(dags) or 'no DAGs'}.")
        return 0
    errors = status.get("import_errors") or []
    if errors:
        # Plain writes: tracebacks must reach CI logs verbatim, without markup or wrapping.
        sys.stderr.write(
            f"Error: Airflow could not import {plural(len(errors), 'file')} of deploy "
            f"#{status['seq']} ({status['deploy_id']}):\n"
        )
        for error in errors:
            sys.stderr.write(f"\n--- {error['filename']}\n{error['stack_trace'].rstrip()}\n")
        sys.stderr.flush()
        if not result.timed_out:
            return 1
    if result.timed_out:
        files = status.get("files") or {}
        pending = files.get("pending") or []
        sys.stderr.write(
            f"Error: timed out after {timeout:g}s waiting for Airflow to parse deploy "
            f"#{status['seq']} (state {status['state']}"
            + (f"; not parsed yet: {', '.join(pending[:10])}" if pending else "")
            + f"): {status.get('detail')}\n"
        )
        return 1
    if not errors:
        sys.stderr.write(f"Error: {status.get('detail')}\n")
    return 1


def now() -> float:
    return time.monotonic()


def finish(result: dict[str, Any], waited: WaitResult, timeout: float, json: bool) -> None:
    """End a command that waited: its JSON (the result plus ``wait``, ``dags`` and
    ``import_errors``, one shape for deploy, promote and preview deploy), then the report on
    stderr; a failed wait exits with its code."""
    if json:
        wait_result = waited.to_dict()
        print_json(
            {
                **result,
                "wait": wait_result,
                "dags": wait_result["dags"],
                "import_errors": wait_result["import_errors"],
            }
        )
    code = report(waited, timeout)
    if code:
        raise typer.Exit(code)
