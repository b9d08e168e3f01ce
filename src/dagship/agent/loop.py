"""``dagship agent run``: follow one deployment's project version and run it on this host.

The loop, once the host runs exactly one version (``start``):

1. long-poll the deployment's current project version (an ETag of the version it saw last);
2. a version the host does not run: report ``building``, materialize its tree, build its
   environment in a child process while polling on (a newer version abandons the build and is
   applied instead), run the apply steps, report ``starting``, switch the components
   (supervisor.py), report ``running``, or ``failed`` with the error's last lines while the old
   version keeps running; remove the trees no longer current or previous;
3. the same version (a DAG-only deploy changes nothing here): nothing restarts; report
   ``running`` as a heartbeat; restart a component that ended on its own.

A server that cannot be reached changes nothing on the host: the agent keeps running what it
runs and asks again with a growing pause (up to ``MAX_BACKOFF``), and reports when it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from dagship.agent.builder import Build, start_build
from dagship.agent.errors import AgentError
from dagship.agent.home import AgentHome, agent_id
from dagship.agent.os_packages import check_os_packages
from dagship.agent.project_tree import ProjectTrees, manifest_of
from dagship.agent.reporter import Reporter
from dagship.agent.settings import SETTINGS_FILE, read_airflow_settings
from dagship.agent.state import HostState, RecordedProcess, kill_leftovers, load_state, start_time
from dagship.agent.supervisor import Host, Supervisor
from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.schemas import ProjectCurrentOut
from dagship.core.vocabulary import AgentState, Component
from dagship.environment.build import MARKER, Environment, ensure_environment

log = logging.getLogger("dagship.agent")

# How long one long poll waits for a new version (and so how often the agent reports).
LONG_POLL = 20.0
# While building: how often the agent looks for a newer version.
BUILD_POLL = 2.0
MAX_BACKOFF = 30.0
# While waiting for the server: how often the agent looks whether it was told to stop.
STOP_CHECK = 0.2
# How often an agent whose deployment has no project deploy yet asks again.
NO_DEPLOY_POLL = 3.0


@dataclass(frozen=True)
class AgentOptions:
    deployment: str
    components: list[Component]
    home: Path
    server_url: str
    token: str | None
    grace_period: float = 600.0
    install_os_packages: bool = False
    base_env: Mapping[str, str] = field(default_factory=dict)


class _Stopping(Exception):
    """The agent was told to stop while it waited for the server."""


class _Abandoned(Exception):
    """A newer project version arrived while building: apply that one instead."""

    def __init__(self, newer: ProjectCurrentOut) -> None:
        self.newer = newer


class Agent:
    def __init__(self, options: AgentOptions, client: ApiClient, stop: threading.Event) -> None:
        self.options = options
        self.client = client
        self.stop_event = stop
        self.home = AgentHome(options.home.absolute())
        self.home.prepare()
        self.trees = ProjectTrees(self.home)
        self.state: HostState = load_state(self.home.state_file)
        host = Host(
            self.home,
            options.components,
            options.server_url,
            options.deployment,
            options.token,
            options.grace_period,
            options.base_env,
        )
        self.supervisor = Supervisor(host, self.state, self._environment_of)
        self.reporter = Reporter(
            client,
            options.deployment,
            agent_id(self.home.root),
            str(self.home.root),
            options.components,
        )
        self.seen: str | None = None  # the version the server named last (the long poll's ETag)
        self.failures = 0
        # (version, error) of the last apply when it failed.
        self.failure: tuple[str, str] | None = None

    # -- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        self._recover()
        self.reporter.keep_reporting(self.stop_event)
        try:
            while not self.stop_event.is_set():
                self._turn()
        finally:
            self.supervisor.stop()

    def _turn(self) -> None:
        wait = 0.0 if self.seen is None else LONG_POLL
        try:
            current = self._long_poll(wait)
        except _Stopping:
            return
        except ApiError as exc:
            self._unreachable(exc)
            return
        self.failures = 0
        if current is not None:
            self.seen = current.version
            if current.version == self._running_version():
                # Back on the version this host runs (a rollback after a failed apply): the
                # failure of the other version is no longer this host's state.
                self.failure = None
        self._supervise()
        while current is not None and current.version != self._running_version():
            try:
                self._apply(current)
                current = None
            except _Abandoned as newer:
                current = newer.newer
                self.seen = current.version
        self._heartbeat()

    def _long_poll(self, wait: float) -> ProjectCurrentOut | None:
        """The deployment's current project version (None: still ``self.seen`` after ``wait``
        seconds), asked in a thread of its own so that an agent told to stop (SIGTERM) stops
        its components at once rather than after the long poll ends: _Stopping then."""
        answer: Future[ProjectCurrentOut | None] = Future()

        def ask() -> None:
            try:
                answer.set_result(
                    self.client.current_project(self.options.deployment, self.seen, wait)
                )
            except BaseException as exc:  # handed to the loop's thread
                answer.set_exception(exc)

        # A daemon thread: a stopping agent's process does not wait for it either.
        threading.Thread(target=ask, name="dagship-agent-poll", daemon=True).start()
        while True:
            try:
                return answer.result(timeout=STOP_CHECK)
            except TimeoutError:
                if self.stop_event.is_set():
                    raise _Stopping from None

    def _running_version(self) -> str | None:
        return self.state.current if self.supervisor.running else None

    def _unreachable(self, exc: ApiError) -> None:
        """Keep what runs; ask again after a pause that grows with each failure."""
        if not self.supervisor.running and self.state.current and self.seen is None:
            self._start_recorded()
        if exc.status == 404:
            # No project deploy yet (or no such deployment): nothing to run; say so, look again.
            log.warning("%s", exc)
            self._heartbeat()
            self.stop_event.wait(NO_DEPLOY_POLL)
            return
        log.warning("cannot get the current project version: %s", exc)
        self.failures += 1
        self.stop_event.wait(min(MAX_BACKOFF, 2.0 ** min(self.failures, 5)))

    def _heartbeat(self) -> None:
        """Report the state as it is: a failed apply stays reported until the next one, or
        until the deployment names the version the host runs again."""
        if self.failure is not None:
            version, error = self.failure
            self.reporter.report(AgentState.FAILED, self._running_version(), version, error)
        elif self.supervisor.running:
            self.reporter.report(AgentState.RUNNING, self.state.current)
        else:
            self.reporter.report(AgentState.WAITING, None)

    # -- start-up -----------------------------------------------------------------------------
    def _recover(self) -> None:
        """End what an earlier agent on this home left running, so that exactly one version
        comes up: the server's current one (applied by the loop), or the recorded one when the
        server cannot be reached."""
        self.trees.clear_tmp()
        ended = kill_leftovers(self.state.processes)
        if ended:
            log.info("ended processes left by an earlier agent: %s", ", ".join(ended))
        self.state.processes = []
        self.state.target = None
        self.supervisor.save()

    def _start_recorded(self) -> None:
        version = self.state.current
        assert version is not None
        log.info("the server cannot be reached: starting the recorded project version %s", version)
        try:
            self.supervisor.switch(version, self._environment_of(version))
        except AgentError as exc:
            log.error("cannot start project version %s: %s", version, exc)

    def _environment_of(self, version: str) -> Environment:
        """The environment of a version this host ran (cached: found, not built)."""
        tree = self.trees.path(version)
        if not tree.is_dir():
            raise AgentError(f"project version {version} is no longer on this host ({tree})")
        return ensure_environment(tree)

    # -- applying a version -------------------------------------------------------------------
    def _apply(self, current: ProjectCurrentOut) -> None:
        version = current.version
        started = time.monotonic()
        self.failure = None
        self.reporter.report(AgentState.BUILDING, self._running_version(), version)
        try:
            tree = self.trees.materialize(manifest_of(current), self.client)
            environment = self._build(tree, version)
            self.reporter.airflow_version = environment.airflow_version
            self.state.last_apply = {
                "version": version,
                "environment": "reused" if environment.reused else "built",
                "build_seconds": round(time.monotonic() - started, 2),
            }
            log.info(
                "environment of %s %s in %.1fs (%s)",
                version,
                "reused" if environment.reused else "built",
                time.monotonic() - started,
                environment.location,
            )
            self._check_os_packages(tree)
            self._check_airflow_settings(tree)
            self.reporter.report(AgentState.STARTING, self._running_version(), version)
            self.supervisor.switch(version, environment)
        except (AgentError, ApiError) as exc:
            if self.stop_event.is_set():
                return  # the agent stops: not a failure of the version
            self._failed(version, str(exc))
            return
        self.state.last_apply["seconds"] = round(time.monotonic() - started, 2)
        self.supervisor.save()
        log.info("project version %s runs (applied in %.1fs)", version, time.monotonic() - started)
        self.reporter.report(AgentState.RUNNING, version)
        self._prune()

    def _build(self, tree: Path, version: str) -> Environment:
        """Build the version's environment; raise _Abandoned when a newer version arrives."""
        known = self.state.environments.get(version)
        if known and (Path(known) / MARKER).is_file():
            return ensure_environment(tree)  # built before: found at once, nothing to build
        environment = self._build_in_child(tree, version)
        if environment.location is not None:
            self.state.environments[version] = str(environment.location)
        return environment

    def _build_in_child(self, tree: Path, version: str) -> Environment:
        build = start_build(tree, version, self.home.tmp)
        self.state.record(RecordedProcess("build", build.pid, start_time(build.pid), version))
        self.supervisor.save()
        try:
            return self._await_build(build)
        finally:
            self.state.forget(build.pid)
            self.supervisor.save()

    def _await_build(self, build: Build) -> Environment:
        next_report = time.monotonic() + LONG_POLL
        while build.running():
            if self.stop_event.is_set():
                build.abandon()
                raise AgentError("the agent is stopping")
            try:
                newer = self.client.current_project(
                    self.options.deployment, build.version, BUILD_POLL
                )
            except ApiError:
                newer = None
                self.stop_event.wait(BUILD_POLL)
            if newer is not None and newer.version != build.version:
                log.info(
                    "project version %s arrived: abandoning the build of %s",
                    newer.version,
                    build.version,
                )
                build.abandon()
                raise _Abandoned(newer)
            if time.monotonic() > next_report:
                self.reporter.report(AgentState.BUILDING, self._running_version(), build.version)
                next_report = time.monotonic() + LONG_POLL
        return build.result()

    def _check_os_packages(self, tree: Path) -> None:
        """The project's ``packages.txt``: a package missing on the host fails the apply,
        unless ``--install-os-packages`` installs it."""
        installed = check_os_packages(tree, self.options.install_os_packages)
        if installed:
            log.info("installed OS packages: %s", ", ".join(installed))

    def _check_airflow_settings(self, tree: Path) -> None:
        """A project's ``airflow_settings.yaml`` that cannot be applied fails the apply here,
        before anything stops (it is applied to the database during the switch)."""
        if (tree / SETTINGS_FILE).is_file():
            read_airflow_settings(tree / SETTINGS_FILE)

    def _failed(self, version: str, error: str) -> None:
        log.error("applying project version %s failed: %s", version, error)
        self.state.target = None
        self.supervisor.save()
        if not self.supervisor.running and self.state.current and self.state.current != version:
            self._start_recorded()  # nothing runs (the agent restarted): the last good version
        self.failure = (version, error)
        self._heartbeat()

    def _prune(self) -> None:
        keep = {v for v in (self.state.current, self.state.previous) if v}
        self.state.environments = {
            v: path for v, path in self.state.environments.items() if v in keep
        }
        self.supervisor.save()
        removed = self.trees.prune(keep)
        if removed:
            log.info("removed project trees no longer used: %s", ", ".join(removed))

    def _supervise(self) -> None:
        """Start again a component that ended on its own, on the version the host runs."""
        gone = self.supervisor.exited()
        if not gone or self.state.current is None:
            return
        names = ", ".join(f"{r.component} (code {r.exited()})" for r in gone)
        log.warning("%s ended on its own: restarting project version %s", names, self.state.current)
        self.supervisor.stop()
        try:
            self.supervisor.start(self.state.current, self._environment_of(self.state.current))
        except AgentError as exc:
            self.failure = (self.state.current, str(exc))


def check_components(components: list[Component]) -> None:
    """AgentError for a set of components one agent cannot run."""
    if Component.STANDALONE in components and len(set(components)) > 1:
        raise AgentError(
            "standalone already runs the API server, scheduler, DAG processor and triggerer: "
            "name it alone, or name the components without it"
        )


def run_agent(options: AgentOptions, stop: threading.Event) -> None:
    """Run the agent until ``stop`` is set; its components are stopped before it returns."""
    with ApiClient(options.server_url, options.token, timeout=LONG_POLL + 30) as client:
        Agent(options, client, stop).run()
