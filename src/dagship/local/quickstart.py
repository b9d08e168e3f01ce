"""``dagship quickstart``: a local server, a local Airflow, an example project and its deploy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from dagship.airflow_api.client import AirflowClient, AirflowError
from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.client.settings import dagship_home, resolve_settings
from dagship.core import naming
from dagship.core.errors import DagshipError
from dagship.core.schemas import DeployAirflowOut
from dagship.core.vocabulary import Role
from dagship.files import write_atomic
from dagship.flows.deploy import DeployResult, deploy
from dagship.flows.upload import UploadProgress
from dagship.flows.wait import wait_for_airflow
from dagship.local import airflow as runtime
from dagship.local.errors import LocalError
from dagship.local.server import DEFAULT_PORT, LocalServer, start_local_server, stop_local_server
from dagship.project.scaffold import scaffold_project

LOCAL_DEPLOYMENT = "local"
DEFAULT_AIRFLOW_PORT = runtime.DEFAULT_PORT
# The local Airflow is run by `dagship agent run` (docs/agent.md) with its home here: the
# agent builds the deployed project's environment and runs `airflow standalone` from it.
AGENT_HOME_DIR = "agent"
AIRFLOW_HOME_DIR = "agent/airflow"
AIRFLOW_PID_FILE = "airflow.pid"
# The agent's own output (its log lines and any crash); Airflow's is in logs/standalone.log.
AIRFLOW_LOG_FILE = "../logs/agent.out"
# The viewer token (bound to `local`) that the local Airflow's DAG bundle uses.
AIRFLOW_TOKEN_FILE = "airflow-token"
# The first start builds the project's environment with uv and migrates Airflow's database.
AIRFLOW_READY_TIMEOUT = 600.0
PARSE_TIMEOUT = 120.0
# The agent stops its components before it exits (up to its long poll plus their stop).
AGENT_STOP_TIMEOUT = 90.0

Step = Callable[[str], None]


@dataclass
class LocalAirflow:
    """The local Airflow of a quickstart. ``process`` is None when it was already running
    (started by an earlier quickstart): then it is not ours to stop."""

    url: str
    home: Path
    bundle_name: str
    process: runtime.AirflowProcess | None
    pid_file: Path
    username: str = runtime.ADMIN_USER
    password: str | None = None
    dags: list[str] | None = None
    import_errors: list[dict[str, str]] | None = None
    # Whether the server knows this Airflow (the deployment's airflow_url) and follows deploys.
    followed: bool = False

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else _read_pid(self.pid_file)

    @property
    def log_file(self) -> Path:
        return (self.home / AIRFLOW_LOG_FILE).resolve()

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "home": str(self.home),
            "started": self.started,
            "pid": self.pid,
            "pid_file": str(self.pid_file),
            "log_file": str(self.log_file),
            "bundle_name": self.bundle_name,
            "username": self.username,
            "password": self.password,
            "dags": self.dags,
            "import_errors": self.import_errors,
            "followed_by_server": self.followed,
        }


@dataclass(frozen=True)
class QuickstartResult:
    server: LocalServer
    project_dir: Path
    scaffolded: list[str]
    created_deployment: bool
    deploy: DeployResult
    token: str | None = None
    airflow: LocalAirflow | None = None
    # Why no Airflow runs (not installed), or None.
    airflow_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.server.url,
            "home": str(self.server.home),
            "token_file": str(self.server.token_file),
            "token": self.token,
            "started_server": self.server.started,
            "server_pid": self.server.pid,
            "project_dir": str(self.project_dir),
            "scaffolded": self.scaffolded,
            "deployment": LOCAL_DEPLOYMENT,
            "created_deployment": self.created_deployment,
            "deploy": self.deploy.to_dict(),
            "airflow": self.airflow.to_dict() if self.airflow else None,
            "airflow_skipped": self.airflow_skipped,
        }


def quickstart(
    directory: str | os.PathLike[str],
    port: int = DEFAULT_PORT,
    home: Path | None = None,
    on_progress: UploadProgress | None = None,
    with_airflow: bool = True,
    airflow_port: int = DEFAULT_AIRFLOW_PORT,
    on_step: Step | None = None,
) -> QuickstartResult:
    """Start (or reuse) a local server, scaffold an example project if ``directory`` has no
    dags/, create the ``local`` deployment if missing and deploy the project to it. With
    ``with_airflow``, also start (or reuse) ``airflow standalone`` in ``home/airflow`` wired to
    the dagship bundle of ``local``, and wait until it has parsed the deployed DAG version.

    Processes started here are stopped again if a later step fails or is interrupted.
    """
    step = on_step or (lambda message: None)
    home = (home or dagship_home()).absolute()
    project_dir = Path(directory).absolute()
    skipped = None
    if with_airflow and not runtime.airflow_installed():
        with_airflow = False
        skipped = f"Apache Airflow is not installed here: {runtime.INSTALL_HINT}"
    server_env = None
    if with_airflow:
        # Known before Airflow starts, so the server can follow deploys in Airflow's REST API.
        password = runtime.ensure_admin_password(home / AIRFLOW_HOME_DIR)
        server_env = {
            "DAGSHIP_AIRFLOW_USERNAME": runtime.ADMIN_USER,
            "DAGSHIP_AIRFLOW_PASSWORD": password,
        }
    step(f"Starting the dagship server on port {port} (or reusing the one there)")
    server = start_local_server(home, port, extra_env=server_env)
    airflow: LocalAirflow | None = None
    try:
        scaffolded = scaffold_project(project_dir)
        env = {**os.environ, "DAGSHIP_HOME": str(home)}
        settings = resolve_settings(url=server.url, env=env)
        with ApiClient(settings.url, settings.token) as client:
            created = _ensure_deployment(client, LOCAL_DEPLOYMENT)
            if with_airflow:
                airflow = _start_airflow(client, server, home, airflow_port, step)
            step(f"Deploying {project_dir} to {LOCAL_DEPLOYMENT}")
            result = deploy(
                client, project_dir, LOCAL_DEPLOYMENT, on_progress=on_progress, check=_no_parse
            )
            if airflow is not None:
                _airflow_ready(client, airflow, step)
            if airflow is not None and result.deploy.dags_files:
                step("Waiting for Airflow to parse the deployed DAGs")
                _wait_parsed(client, airflow, result)
    except BaseException:
        if airflow is not None:
            stop_airflow(airflow)
        stop_local_server(server)
        raise
    return QuickstartResult(
        server, project_dir, scaffolded, created, result, settings.token, airflow, skipped
    )


def _no_parse(kind: str) -> dict[str, str]:
    # The quickstart does not parse before deploying (docs/validate.md): its local Airflow
    # parses the deploy right after and the quickstart reports that parse's import errors,
    # and it must work where no Airflow environment can be built. The deploy says so.
    return {"parse": "skipped", "pytest": "not-run"}


def stop_airflow(airflow: LocalAirflow) -> None:
    """Stop an Airflow this process started and drop its pid file: the agent is asked to stop
    its components (SIGTERM), then whatever is left of its processes is ended."""
    if airflow.process is None:
        return
    agent = airflow.process.process
    if agent is not None and agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(AGENT_STOP_TIMEOUT)
    airflow.process.stop()
    with contextlib.suppress(FileNotFoundError):
        if _read_pid(airflow.pid_file) == airflow.process.pid:
            airflow.pid_file.unlink()


def stop_all(result: QuickstartResult, on_step: Step | None = None) -> None:
    """Stop every process this quickstart started: Airflow first (it polls the server),
    saying what is being stopped and how long it may take (``on_step``)."""
    step = on_step or (lambda message: None)
    started = time.monotonic()
    if result.airflow is not None and result.airflow.started:
        step(
            "Stopping the local Airflow: the agent stops its API server, scheduler, DAG "
            f"processor and triggerer, letting running tasks end (up to {AGENT_STOP_TIMEOUT:g}s)…"
        )
        stop_airflow(result.airflow)
    if result.server.started:
        step("Stopping the dagship server…")
    stop_local_server(result.server)
    if result.server.started or (result.airflow is not None and result.airflow.started):
        step(f"Stopped everything quickstart started in {time.monotonic() - started:.0f}s")


def serve_until_stopped(
    result: QuickstartResult, stop: threading.Event, on_step: Step | None = None
) -> int:
    """Wait until ``stop`` is set, then stop what this quickstart started. Returns 0, or 1
    after stopping everything if the server or Airflow died on its own."""
    try:
        while not stop.wait(0.5):
            if result.server.process is not None and result.server.process.poll() is not None:
                raise LocalError(
                    f"the dagship server stopped with code {result.server.process.returncode}: "
                    f"see {result.server.log_file}"
                )
            airflow = result.airflow
            if airflow is not None and airflow.process and not airflow.process.running():
                raise LocalError(f"Airflow stopped on its own: see {airflow.log_file}")
        return 0
    finally:
        stop_all(result, on_step)


def _start_airflow(
    client: ApiClient, server: LocalServer, home: Path, port: int, step: Step
) -> LocalAirflow:
    airflow_home = home / AIRFLOW_HOME_DIR
    pid_file = home / AIRFLOW_PID_FILE
    url = runtime.airflow_url(port)
    bundle_name = naming.bundle_name(LOCAL_DEPLOYMENT)
    pid = _read_pid(pid_file)
    running = _airflow_port(pid) if pid is not None else None
    if pid is not None and running is not None:
        # Started by an earlier quickstart (detached, or still running in another terminal).
        if running != port:
            raise LocalError(
                f"the local Airflow (pid {pid}) runs on port {running}: re-run with "
                f"--airflow-port {running}, or stop it with `kill -- -{pid}`"
            )
        step(f"Reusing the local Airflow at {url} (pid {pid})")
        deadline = time.monotonic() + AIRFLOW_READY_TIMEOUT
        with AirflowClient(url) as airflow_api:
            while not runtime.is_healthy(airflow_api.health()):
                if time.monotonic() > deadline or _airflow_port(pid) is None:
                    raise LocalError(
                        f"the local Airflow (pid {pid}) is not ready at {url}: see "
                        f"{(airflow_home / AIRFLOW_LOG_FILE).resolve()}, or stop it with "
                        f"`kill -- -{pid}`"
                    )
                time.sleep(1.0)
        airflow = LocalAirflow(url, airflow_home, bundle_name, None, pid_file)
    elif _port_in_use(port):
        raise LocalError(
            f"port {port} is taken by another program (another Airflow?): pass --airflow-port "
            "with a free port, or stop it"
        )
    else:
        token = _airflow_token(client, home / AIRFLOW_TOKEN_FILE)
        env = runtime.airflow_env(airflow_home, port, server.url, LOCAL_DEPLOYMENT, token)
        for message in _free_log_server_ports(env):
            step(message)
        agent = _start_agent(env, home / AGENT_HOME_DIR, server.url, url)
        step(f"Started the dagship agent: it runs Airflow at {url} from the deployed project")
        airflow = LocalAirflow(url, airflow_home, bundle_name, agent, pid_file)
        assert agent.pid is not None  # always a started process
        write_atomic(pid_file, f"{agent.pid}\n")
    return airflow


def _start_agent(
    env: dict[str, str], agent_home: Path, server_url: str, airflow_url: str
) -> runtime.AirflowProcess:
    """``dagship agent run --component standalone`` for ``local`` in its own process group:
    it applies each project deploy (environment, plugins, include/) to the local Airflow."""
    log_file = agent_home / "logs" / "agent.out"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    (Path(env["AIRFLOW_HOME"]) / "dags").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "dagship", "agent", "run", "-d", LOCAL_DEPLOYMENT]
    command += ["--component", "standalone", "--home", str(agent_home), "--server", server_url]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=agent_home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return runtime.AirflowProcess(airflow_url, agent_home, log_file, process)


def _airflow_ready(client: ApiClient, airflow: LocalAirflow, step: Step) -> None:
    """Wait until the local Airflow is up (for one started now: once the agent has built the
    deployed project's environment and started it), then tell the server where it is."""
    if airflow.process is not None:
        try:
            step(
                "Waiting for the agent to build the project's environment and start Airflow "
                "(a few minutes on first start)"
            )
            airflow.process.wait_ready(AIRFLOW_READY_TIMEOUT)
        except BaseException:
            stop_airflow(airflow)
            raise
    airflow.password = runtime.admin_password(airflow.home)
    _set_airflow_url(client, airflow)


class _ServerCannotFollow(DagshipError):
    """The server cannot reach or log in to the local Airflow: ask Airflow directly."""


def _wait_parsed(client: ApiClient, airflow: LocalAirflow, result: DeployResult) -> None:
    """What Airflow made of the deployed version: from the server, which follows the deploy
    (and asks Airflow to reparse the changed files) when it knows this Airflow; else straight
    from Airflow's REST API."""
    if airflow.followed and not result.unchanged:

        def give_up_if_unreachable(status: DeployAirflowOut) -> None:
            # E.g. a server started earlier without this Airflow's login: ask Airflow directly.
            if not status.reachable:
                raise _ServerCannotFollow

        try:
            waited = wait_for_airflow(
                client, result.id, PARSE_TIMEOUT, on_status=give_up_if_unreachable
            )
        except (ApiError, _ServerCannotFollow):
            waited = None
        if waited is not None and not waited.timed_out and waited.state in ("parsed", "failed"):
            airflow.dags = list(waited.status.dags)
            airflow.import_errors = [
                {"filename": e.filename, "stack_trace": e.stack_trace}
                for e in waited.status.import_errors
            ]
            return
    try:
        with AirflowClient(
            airflow.url, username=airflow.username, password=airflow.password
        ) as airflow_api:
            parsed = runtime.wait_for_version(
                airflow_api, airflow.bundle_name, result.dags_version, PARSE_TIMEOUT
            )
    except (LocalError, AirflowError) as exc:
        raise LocalError(f"{exc}\nSee {airflow.log_file}") from exc
    airflow.dags = parsed.dags
    airflow.import_errors = parsed.import_errors


def _airflow_token(client: ApiClient, path: Path) -> str:
    """A viewer token bound to ``local`` for the DAG bundle: the saved one if the server still
    accepts it, else a new one (saved with mode 0600)."""
    with contextlib.suppress(OSError):
        saved = path.read_text(encoding="utf-8").strip()
        if saved:
            with ApiClient(client.url, saved) as probe:
                try:
                    probe.get_deployment(LOCAL_DEPLOYMENT)
                    return saved
                except ApiError as exc:
                    if exc.status not in (401, 403, 404):
                        raise
    created = client.create_token(
        Role.VIEWER, LOCAL_DEPLOYMENT, description="local Airflow of dagship quickstart"
    )
    secret = created.token
    write_atomic(path, secret + "\n", mode=0o600)
    return secret


def _set_airflow_url(client: ApiClient, airflow: LocalAirflow) -> None:
    """Tell the server where `local`'s Airflow is, so that it follows deploys there (servers
    that predate this simply do not)."""
    try:
        current = client.get_deployment(LOCAL_DEPLOYMENT)
    except ApiError:  # also a server too old to know a deployment's Airflow
        return
    if (current.airflow_url, current.airflow_bundle) != (airflow.url, airflow.bundle_name):
        try:
            client.update_deployment(
                LOCAL_DEPLOYMENT, airflow_url=airflow.url, airflow_bundle=airflow.bundle_name
            )
        except ApiError:
            return
    airflow.followed = True


def _ensure_deployment(client: ApiClient, name: str) -> bool:
    try:
        client.get_deployment(name)
        return False
    except ApiError as exc:
        if exc.status != 404:
            raise
    client.create_deployment(name, description="created by dagship quickstart")
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _airflow_port(pid: int) -> int | None:
    """The API port of the ``airflow standalone`` running as ``pid``, or None if ``pid`` is
    not one (gone, or reused by another program)."""
    try:
        process = psutil.Process(pid)
        cmdline = process.cmdline()
        environ = process.environ()
    except psutil.Error:
        return None
    agent = "agent" in cmdline and any("dagship" in part for part in cmdline)
    if "standalone" not in cmdline or not (agent or any("airflow" in part for part in cmdline)):
        return None
    with contextlib.suppress(KeyError, ValueError):
        return int(environ["AIRFLOW__API__PORT"])
    return DEFAULT_AIRFLOW_PORT


# The other ports an `airflow standalone` binds: its scheduler's and triggerer's log servers,
# which serve task logs to the UI. A busy one breaks task logs, the error only in Airflow's log.
LOG_SERVER_PORTS = {
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": (8793, "task log server"),
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": (8794, "triggerer log server"),
}


def _free_log_server_ports(env: dict[str, str]) -> list[str]:
    """Give Airflow's log servers free ports where their defaults are in use (a port set in the
    environment is the user's choice and kept); what was moved, said plainly."""
    moved = []
    for variable, (default, what) in LOG_SERVER_PORTS.items():
        if variable in env or not _port_in_use(default):
            continue
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            free = sock.getsockname()[1]
        env[variable] = str(free)
        moved.append(f"Port {default} (Airflow's {what}) is in use: the local Airflow uses {free}")
    return moved


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0
