"""The components of one host, on one project version at a time.

``switch`` stops the components, starts them on the new version in order and waits until each
is up; when one does not come up, it stops the new version and starts the one before it again,
so the host never runs two versions at once. Every process group started is recorded in the
state file before anything waits on it: an agent killed at any point leaves a record of what
to end (state.py).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dagship.agent.component_env import component_environment
from dagship.agent.components import (
    RunningComponent,
    log_tail,
    ordered,
    start_component,
    stop_component,
    wait_started,
)
from dagship.agent.errors import AgentError
from dagship.agent.home import AgentHome
from dagship.agent.settings import apply_airflow_settings
from dagship.agent.state import HostState, RecordedProcess, save_state, start_time
from dagship.core.vocabulary import Component
from dagship.environment.build import Environment

log = logging.getLogger("dagship.agent")

# The components whose agent migrates Airflow's metadata database before starting them.
OWN_DATABASE = (Component.STANDALONE, Component.SCHEDULER, Component.API_SERVER)
MIGRATE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Host:
    """What the supervisor needs to know about the host and the deployment it follows."""

    home: AgentHome
    components: list[Component]
    server_url: str
    deployment: str
    token: str | None
    grace_period: float
    base_env: Mapping[str, str]


# Finds (or builds) the environment of a version the host ran before.
EnvironmentOf = Callable[[str], Environment]


class Supervisor:
    def __init__(self, host: Host, state: HostState, environment_of: EnvironmentOf) -> None:
        self.host = host
        self.state = state
        self.environment_of = environment_of
        self.running: list[RunningComponent] = []

    def save(self) -> None:
        save_state(self.host.home.state_file, self.state)

    def environment(self, version: str, environment: Environment) -> dict[str, str]:
        """The environment of the components of ``version``."""
        return component_environment(
            self.host.home.airflow_home,
            self.host.home.projects / version,
            environment.python.parent,
            self.host.home.python_path,
            self.host.server_url,
            self.host.deployment,
            self.host.token,
            self.host.base_env,
        )

    def switch(self, version: str, environment: Environment) -> None:
        """Run ``version``: stop what runs, start it; when it does not come up, start the
        version that ran before again and raise AgentError saying why."""
        old = self.state.current
        self.stop()
        self.state.target = version
        self.save()
        try:
            self.start(version, environment)
        except AgentError as exc:
            self.stop()
            self.state.target = None
            self.save()
            fallback = old if old is not None and old != version else None
            if fallback is None:
                raise
            log.warning("falling back to project version %s", fallback)
            self.start(fallback, self.environment_of(fallback))
            raise AgentError(f"{exc}\nThe host runs project version {fallback} again.") from exc
        if self.state.current != version:
            self.state.previous = self.state.current
        self.state.current = version
        self.state.target = None
        self.save()

    def start(self, version: str, environment: Environment) -> None:
        """Start the components on ``version`` in order, each up before the next; on failure
        the ones started are stopped again and AgentError says which failed and why."""
        env = self.environment(version, environment)
        airflow = environment.python.parent / "airflow"
        if any(c in OWN_DATABASE for c in self.host.components):
            self._migrate(airflow, env, environment.airflow_version)
            self._apply_settings(version, env, environment)
        try:
            for component in ordered(self.host.components):
                log_file = self.host.home.component_log(component)
                running = start_component(component, airflow, env, log_file, version)
                self.running.append(running)
                self.state.record(
                    RecordedProcess(component, running.pid, start_time(running.pid), version)
                )
                self.save()
                wait_started(running)
                log.info("%s runs project version %s (pid %d)", component, version, running.pid)
        except BaseException:
            self.stop()
            raise

    def _apply_settings(
        self, version: str, env: Mapping[str, str], environment: Environment
    ) -> None:
        """The version's ``airflow_settings.yaml`` (connections, pools, variables) applied to
        the metadata database after its migration, before the components start."""
        tree = self.host.home.projects / version
        applied = apply_airflow_settings(environment.python, env, tree)
        if applied.connections or applied.pools or applied.variables or applied.skipped:
            log.info(
                "airflow_settings.yaml of %s applied: %d connections, %d pools, %d variables%s",
                version,
                applied.connections,
                applied.pools,
                applied.variables,
                f"; skipped {', '.join(applied.skipped)}" if applied.skipped else "",
            )

    def stop(self) -> None:
        """Stop every running component, the last started first."""
        for running in reversed(self.running):
            killed = stop_component(running, self.host.grace_period)
            self.state.forget(running.pid)
            log.info("%s stopped (pid %d)", running.component, running.pid)
            if killed:
                log.warning("killed after ignoring SIGTERM: %s", "; ".join(killed))
        self.running = []
        self.save()

    def exited(self) -> list[RunningComponent]:
        """The components that ended on their own (they are no longer counted as running)."""
        gone = [r for r in self.running if r.exited() is not None]
        for running in gone:
            self.running.remove(running)
            self.state.forget(running.pid)
        if gone:
            self.save()
        return gone

    def _migrate(self, airflow: Path, env: Mapping[str, str], airflow_version: str) -> None:
        """``airflow db migrate`` once per Airflow version the host runs."""
        if self.state.migrated_for == airflow_version:
            return
        log_file = self.host.home.component_log("db-migrate")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log.info("migrating Airflow's metadata database for Airflow %s", airflow_version)
        with log_file.open("ab") as output:
            try:
                done = subprocess.run(
                    [str(airflow), "db", "migrate"],
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=MIGRATE_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise AgentError(f"`airflow db migrate` took over {MIGRATE_TIMEOUT:.0f}s") from exc
        if done.returncode != 0:
            raise AgentError(
                f"`airflow db migrate` (Airflow {airflow_version}) failed with code "
                f"{done.returncode}:\n{log_tail(log_file)}"
            )
        self.state.migrated_for = airflow_version
        self.save()
