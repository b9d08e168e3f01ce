"""``--wait``: follow a deploy until its agents run its project version (when it changes
the project) and Airflow parsed it; progress and errors on stderr."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import typer

from dagship.cli.common import err, plural, short, show
from dagship.cli.hints import state_message
from dagship.core.durations import format_duration
from dagship.core.vocabulary import AgentState, AirflowState

if TYPE_CHECKING:
    from dagship.client.api import ApiClient
    from dagship.core.schemas import AgentOut, DeployAirflowOut, DeployOut
    from dagship.flows.rollback import AutoRollback
    from dagship.flows.wait import WaitResult


class Progress:
    """Prints one stderr line per step: applying → uploaded → picked up → parsed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last: tuple[AirflowState, int, str] | None = None

    def __call__(self, status: DeployAirflowOut) -> None:
        agents = agents_summary(status.agents)
        key = (status.state, status.files.parsed, agents)
        if not self.enabled or key == self._last:
            return
        self._last = key
        if status.state == AirflowState.APPLYING:
            err.print(f"Applying project version {short(status.project_version)}: {agents}…")
        elif status.state == AirflowState.WAITING:
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
        err.print(f"Following deploy {deploy_id} in Airflow (timeout {format_duration(timeout)}).")
    return wait_for_airflow(api, deploy_id, timeout, Progress(not quiet), started=started)


def report(result: WaitResult, timeout: float) -> int:
    """Say how the wait ended on stderr (every import error and agent error in full) and
    return the exit code."""
    status = result.status
    if result.ok:
        dags = ", ".join(status.dags) or "no DAGs"
        gone = ", ".join(status.removed_dags)
        removed = f"; removed from Airflow: {gone}" if gone else ""
        err.print(f"Airflow parsed it in {format_duration(result.elapsed)}: {dags}{removed}.")
        return 0
    if status.state == AirflowState.FAILED and _report_failed_agents(status):
        return 1
    if result.timed_out and status.state == AirflowState.APPLYING:
        sys.stderr.write(
            f"Error: timed out after {format_duration(timeout)} waiting for the agents of "
            f"{status.deployment} "
            f"to run project version {short(status.project_version)} of deploy #{status.seq}; "
            f"not there yet: {_behind(status)}\n"
        )
        return 1
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
            f"Error: timed out after {format_duration(timeout)} waiting for Airflow to parse "
            f"deploy #{status.seq} (state {status.state}"
            + (f"; not parsed yet: {', '.join(pending[:10])}" if pending else "")
            + f"): {state_message(status)}\n"
        )
        return 1
    if not errors:
        sys.stderr.write(f"Error: {state_message(status)}\n")
    return 1


def agents_summary(agents: Sequence[AgentOut]) -> str:
    """How many agents do what, e.g. "2 agents: 1 running sha256-3f9c…, 1 building"."""
    if not agents:
        return "no agents"
    ordered = sorted(agents, key=lambda agent: _FURTHEST_FIRST.index(agent.state))
    counts = Counter(_doing(agent) for agent in ordered)
    return f"{plural(len(agents), 'agent')}: " + ", ".join(
        f"{count} {doing}" for doing, count in counts.items()
    )


_FURTHEST_FIRST = (
    AgentState.RUNNING,
    AgentState.FAILED,
    AgentState.STARTING,
    AgentState.BUILDING,
    AgentState.WAITING,
)


def _doing(agent: AgentOut) -> str:
    """What one agent does: its state and the project version it concerns (the one it
    applies, or failed to apply; else the one it runs)."""
    applying = agent.state in (AgentState.BUILDING, AgentState.STARTING, AgentState.FAILED)
    version = agent.target_version if applying and agent.target_version else agent.project_version
    return f"{agent.state} {short(version)}" if version else str(agent.state)


def _behind(status: DeployAirflowOut) -> str:
    """The agents that do not run the deploy's project version, and what they do instead."""
    return "; ".join(
        f"{agent.host} (agent {agent.id}, {_doing(agent)})"
        for agent in status.agents
        if not agent.runs(status.project_version)
    )


def _report_failed_agents(status: DeployAirflowOut) -> bool:
    """Print each agent that failed to apply the deploy's project version, with its error
    verbatim; False if none did (the failure is Airflow's)."""
    failed = [agent for agent in status.agents if agent.failed_on(status.project_version)]
    if not status.project_changed or not failed:
        return False
    # Plain writes: the builder's message must reach CI logs verbatim, without wrapping.
    sys.stderr.write(
        f"Error: {plural(len(failed), 'agent')} of {status.deployment} failed to apply project "
        f"version {short(status.project_version)} of deploy #{status.seq} ({status.deploy_id}); "
        "the host keeps running the version before it:\n"
    )
    for agent in failed:
        error = agent.error.rstrip() or "(no error reported)"
        sys.stderr.write(f"\n--- {agent.host} (agent {agent.id})\n{error}\n")
    sys.stderr.flush()
    return True


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
    rollback_on_failure: bool = False,
    made: bool = True,
) -> None:
    """End a command that made (or kept) ``deploy``: show its result (its one summary line
    says which); with ``wait``, then follow the deploy until Airflow parsed it and ``finish``.
    ``rollback_on_failure`` (which implies ``wait``): a deploy this command ``made`` that fails
    in Airflow is rolled back to the one before it."""
    if not (wait or rollback_on_failure) or deploy is None:
        show(document, human, json)
        return
    if not json:
        human()
    waited = follow(api, deploy.id, timeout, json, started)
    document = {**document, **waited_fields(waited)}
    if rollback_on_failure and not waited.ok:
        report(waited, timeout)  # what failed, in full, before rolling back
        undo = _roll_back(api, waited, timeout, json, made)
        show({**document, "rollback": undo.to_dict() if undo else None}, lambda: None, json)
        if undo is not None:
            _report_rollback(undo, timeout)
        raise typer.Exit(1)
    finish(
        {**document, **({"rollback": None} if rollback_on_failure else {})}, waited, timeout, json
    )


def finish(document: dict[str, Any], waited: WaitResult, timeout: float, json: bool) -> None:
    """End a command that waited: with ``--json`` its document, then, for everyone, how the
    wait ended on stderr; a failed wait exits with its code, saying how to roll back."""
    show(document, lambda: None, json)
    code = report(waited, timeout)
    if code:
        _rollback_hint(waited.status)
        raise typer.Exit(code)


def _roll_back(
    api: ApiClient, waited: WaitResult, timeout: float, json: bool, made: bool
) -> AutoRollback | None:
    """Roll back the deploy that failed in Airflow, saying so; None (saying why) when it is
    not rolled back: it did not fail (a timeout), or this command did not make it."""
    from dagship.flows.rollback import failure, rollback_failed

    status = waited.status
    if failure(status) is None or not made:
        why = (
            f"deploy #{status.seq} was already current: this command made no deploy"
            if not made
            else f"deploy #{status.seq} did not fail in Airflow (state {status.state})"
        )
        err.print(f"Nothing was rolled back (--rollback-on-failure): {why}.")
        _rollback_hint(status, suggest_option=False)
        return None
    if not json:
        err.print(
            f"Deploy #{status.seq} failed in Airflow: rolling {status.deployment} back to "
            f"deploy #{status.seq - 1} (--rollback-on-failure)…"
        )
    return rollback_failed(api, status, timeout, Progress(not json))


def _report_rollback(undo: AutoRollback, timeout: float) -> None:
    """After the failed deploy's errors: what the automatic rollback did, on stderr."""
    failed, back = undo.failed, undo.to_seq
    what = f"Error: deploy #{failed.seq} of {failed.deployment} failed in Airflow ({undo.reason})"
    if undo.rollback is None or undo.error is not None:
        sys.stderr.write(
            f"{what}; the automatic rollback did not happen: {undo.error}\n"
            f"{_rollback_command(failed.deployment, back)}\n"
        )
    elif undo.live:
        deploy = undo.rollback.deploy
        sys.stderr.write(
            f"{what}; rolled back to the versions of deploy #{back} with deploy "
            f"#{deploy.seq} ({deploy.id}), which Airflow runs now.\n"
        )
    else:
        deploy = undo.rollback.deploy
        assert undo.waited is not None
        report(undo.waited, timeout)  # the rollback's own errors, in full
        sys.stderr.write(
            f"{what}; rolled back to the versions of deploy #{back} with deploy "
            f"#{deploy.seq} ({deploy.id}), but could not see it live (state "
            f"{undo.waited.state}, above).\n"
        )
    sys.stderr.flush()


def _rollback_hint(status: DeployAirflowOut, *, suggest_option: bool = True) -> None:
    """After a deploy failed in Airflow: the command that goes back to the deploy before it."""
    if status.state == AirflowState.FAILED and status.seq > 1:
        option = " (or deploy with --rollback-on-failure to have dagship roll back on its own)"
        sys.stderr.write(
            f"{_rollback_command(status.deployment, status.seq - 1)}"
            f"{option if suggest_option else ''}\n"
        )
        sys.stderr.flush()


def _rollback_command(deployment: str, seq: int) -> str:
    return f"To go back to deploy #{seq}: dagship rollback {deployment} --to {seq} --wait"


def waited_fields(waited: WaitResult) -> dict[str, Any]:
    """What a command that waited adds to its JSON: ``wait``, and its ``dags`` and
    ``import_errors`` (one shape for deploy, promote and preview deploy)."""
    wait_result = waited.to_dict()
    return {
        "wait": wait_result,
        "dags": wait_result["dags"],
        "import_errors": wait_result["import_errors"],
    }
