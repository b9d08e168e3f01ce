"""A local Apache Airflow (``airflow standalone``) wired to a dagship deployment.

``airflow_env`` builds the environment of that Airflow: the Airflow environment every dagship
Airflow gets (environment/airflow.py: its home, an SQLite database, no examples), plus the
LocalExecutor with few workers, its ports, the dagship DAG bundle for one deployment and
settings that make a deploy show up within seconds. ``start_airflow`` runs ``airflow
standalone`` with it in its own process group; ``AirflowProcess.stop`` ends that group and
every process Airflow started, including task processes that moved to their own group (found
with psutil, so it works wherever psutil does, not only where ``/proc`` exists).

Used by ``dagship quickstart`` and by the tests and benchmarks that need a real Airflow. This
module does not import Airflow: Airflow itself runs in the subprocess, and dagship talks to it
through its REST API (airflow_api/client.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from dagship.airflow_api.client import AirflowClient, AirflowError, AirflowLoginError
from dagship.core import naming
from dagship.core.durations import format_duration
from dagship.environment.airflow import airflow_environment
from dagship.files import write_atomic
from dagship.local.errors import LocalError

DEFAULT_PORT = 8080
ADMIN_USER = "admin"
TOKEN_ENV = "DAGSHIP_API_TOKEN"
BUNDLE_CLASSPATH = "dagship.airflow.DagshipDagBundle"
# Written by Airflow's simple auth manager on first start (Airflow 3.x).
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
INSTALL_HINT = "install it with `pip install 'dagship[airflow]'` (apache-airflow 3.3)"


def airflow_installed() -> bool:
    """Whether Apache Airflow can be imported by this interpreter (and so run next to it)."""
    return importlib.util.find_spec("airflow") is not None and _airflow_executable() is not None


def bundle_config(
    dagship_url: str, deployment: str, bundle_name: str | None = None, refresh_interval: int = 0
) -> list[dict[str, Any]]:
    """The ``[dag_processor] dag_bundle_config_list`` entry for the dagship bundle.

    The token is deliberately absent: the bundle reads it from ``$DAGSHIP_API_TOKEN`` because
    Airflow shows bundle kwargs in its config API.
    """
    return [
        {
            "name": bundle_name or naming.bundle_name(deployment),
            "classpath": BUNDLE_CLASSPATH,
            "kwargs": {
                "url": dagship_url,
                "deployment": deployment,
                "refresh_interval": refresh_interval,
            },
        }
    ]


def airflow_env(
    airflow_home: Path,
    port: int,
    dagship_url: str,
    deployment: str,
    token: str,
    bundle_name: str | None = None,
    fast: bool = True,
    host: str = "127.0.0.1",
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of a local Airflow that runs the dagship bundle: the Airflow
    environment of environment/airflow.py over ``base`` (default ``os.environ``), plus the
    local Airflow's own settings. Give it to ``start_airflow``; override any variable by
    updating the returned dict.

    ``bundle_name`` defaults to ``dagship-<deployment>``. With ``fast`` (default) the bundle's
    refresh runs on every loop of the DAG processor (its listener makes that free: bundle.py)
    and changed DAGs are reparsed and re-serialized within seconds; without it Airflow's own
    intervals apply (5 minutes).
    """
    refresh = 0 if fast else 300
    # Tasks reach the Execution API at this address; "localhost" may resolve to ::1 first.
    local_host = "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host
    # No project: the code comes only from the dagship bundle, the dags folder stays empty.
    env = airflow_environment(airflow_home, None, base)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # LocalExecutor forks this many workers up front: keep a laptop (or CI) responsive.
            "AIRFLOW__CORE__PARALLELISM": "4",
            # Task processes call the Execution API; its default URL assumes port 8080.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{local_host}:{port}/execution/",
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                bundle_config(dagship_url, deployment, bundle_name, refresh)
            ),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            TOKEN_ENV: token,
        }
    )
    if fast:
        env.update(_FAST_REFRESH)
    for key, value in DISCOVERY.items():
        env.setdefault(key, value)
    return env


# Airflow lists a bundle's files again after each version change; with this it reads only the
# files that changed (airflow/discovery.py), unless the user has a heuristic of their own.
DISCOVERY = {
    "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE": "dagship.airflow.discovery.might_contain_dag"
}


_FAST_REFRESH = {
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "0",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "0",
    # Changed files are parsed first (sort by mtime); this bounds the rest.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
    # Default 30 s: a DAG re-parsed sooner is not re-serialized, so a quick second deploy would
    # not show up.
    "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
}


def admin_password(airflow_home: Path, user: str = ADMIN_USER) -> str | None:
    """The password Airflow generated for ``user`` on first start, or None if not there yet."""
    try:
        data = json.loads((Path(airflow_home) / PASSWORDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(user) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def ensure_admin_password(airflow_home: Path, user: str = ADMIN_USER) -> str:
    """The password of ``user`` in the simple auth manager's password file, written (mode
    0600) before Airflow's first start when missing. Airflow keeps passwords it finds in that
    file, so the caller knows the login before Airflow runs (e.g. to give it to the dagship
    server, which follows deploys through Airflow's REST API)."""
    home = Path(airflow_home)
    existing = admin_password(home, user)
    if existing:
        return existing
    home.mkdir(parents=True, exist_ok=True)
    path = home / PASSWORDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    password = secrets.token_urlsafe(12)
    data[user] = password
    write_atomic(path, json.dumps(data) + "\n", mode=0o600)
    return password


def airflow_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def is_healthy(document: Mapping[str, Any] | None) -> bool:
    """Whether the database, scheduler and DAG processor all report ``healthy``."""
    if not document:
        return False
    for part in ("metadatabase", "scheduler", "dag_processor"):
        status = document.get(part)
        if not isinstance(status, Mapping) or status.get("status") != "healthy":
            return False
    return True


@dataclass(frozen=True)
class ParsedVersion:
    """What Airflow made of one bundle version: the DAG ids at that version and the import
    errors of the bundle (``{"filename", "stack_trace"}``)."""

    dags: list[str]
    import_errors: list[dict[str, str]]


def parsed_version(
    client: AirflowClient, bundle_name: str
) -> tuple[dict[str, str | None], list[dict[str, str]]]:
    """``{dag_id: bundle_version}`` of the bundle's DAGs and all its import errors."""
    versions = {str(dag["dag_id"]): dag.get("bundle_version") for dag in client.dags(bundle_name)}
    errors = [
        {"filename": str(item.get("filename")), "stack_trace": str(item.get("stack_trace"))}
        for item in client.import_errors(bundle_name)
    ]
    return versions, errors


def wait_for_version(
    client: AirflowClient, bundle_name: str, version: str, timeout: float = 120.0
) -> ParsedVersion:
    """Wait until Airflow has parsed ``version`` of the bundle: every DAG of the bundle is at
    that version (or there are only import errors). Raises ``LocalError`` naming the import
    errors on timeout, and ``AirflowLoginError`` at once if Airflow refuses the login."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            versions, errors = parsed_version(client, bundle_name)
        except AirflowLoginError:
            raise
        except AirflowError:
            versions, errors = {}, []
        at_version = sorted(d for d, v in versions.items() if v == version)
        if versions and len(at_version) == len(versions):
            return ParsedVersion(at_version, errors)
        if not versions and errors:
            return ParsedVersion([], errors)
        if time.monotonic() > deadline:
            detail = "".join(f"\n  {e['filename']}: {e['stack_trace'][-500:]}" for e in errors)
            raise LocalError(
                f"Airflow at {client.url} did not parse DAG version {version} of bundle "
                f"{bundle_name} within {format_duration(timeout)} ({len(at_version)} of "
                f"{len(versions)} DAGs at it)" + (f"; import errors:{detail}" if detail else "")
            )
        time.sleep(0.5)


@dataclass
class AirflowProcess:
    """``airflow standalone`` at ``url``; ``process`` is None when it was already running
    (then it is not ours to stop)."""

    url: str
    home: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    # Every process of this Airflow seen so far: a task process whose parent ended is no
    # one's descendant any more, but must still be stopped.
    _known: dict[int, psutil.Process] = field(default_factory=dict, repr=False)

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        """Pid of ``airflow standalone``, which is also its process group id."""
        return self.process.pid if self.process is not None else None

    def processes(self) -> list[psutil.Process]:
        """Live processes of this Airflow: its group and every descendant (task processes
        move to their own group)."""
        if self.process is None:
            return []
        self._known.update((proc.pid, proc) for proc in _tree(self.process.pid))
        return [proc for proc in self._known.values() if _alive(proc)]

    def pids(self) -> set[int]:
        return {proc.pid for proc in self.processes()}

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until the API server answers and reports the scheduler and DAG processor
        healthy; raise ``LocalError`` (after stopping it) on timeout or early exit."""
        deadline = time.monotonic() + timeout
        with AirflowClient(self.url) as client:
            while not is_healthy(client.health()):
                self._check_starting(deadline, timeout)
                self.processes()
                time.sleep(1.0)
        self.processes()

    def _check_starting(self, deadline: float, timeout: float) -> None:
        """Raise ``LocalError`` (after stopping it) if Airflow exited or the time is up."""
        if self.process is not None and self.process.poll() is not None:
            self.stop()
            raise LocalError(
                f"Airflow exited with code {self.process.returncode} while starting: "
                f"see {self.log_file}{_log_tail(self.log_file)}"
            )
        if time.monotonic() > deadline:
            self.stop()
            raise LocalError(
                f"Airflow was not ready at {self.url} within {format_duration(timeout)}: "
                f"see {self.log_file}{_log_tail(self.log_file)}"
            )

    def stop(self, timeout: float = 30.0) -> list[str]:
        """SIGTERM the process group and every descendant, then SIGKILL what is left after
        ``timeout``. Safe to call twice; does nothing for an Airflow we did not start.
        Returns the command lines of the processes that had to be killed."""
        if self.process is None:
            return []
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.2)
            if not self.processes():
                return []
        killed = [_command_line(proc) for proc in self.processes()]
        self._signal_all(signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 5
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        return killed

    def _signal_all(self, sig: signal.Signals) -> None:
        assert self.process is not None
        targets = self.processes()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)
        for proc in targets:
            # psutil checks that the pid still names the same process (not a reused one).
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)


def start_airflow(env: Mapping[str, str], log_file: Path) -> AirflowProcess:
    """Start ``airflow standalone`` with the complete environment ``env`` (``airflow_env``),
    in its own process group, logging to ``log_file``. Returns at once: call ``wait_ready``.
    """
    executable = _airflow_executable()
    if executable is None:
        raise LocalError(f"Apache Airflow is not installed: {INSTALL_HINT}")
    full = dict(env)
    # standalone starts its components as `airflow ...` from PATH: make it this interpreter's.
    bin_dir = str(Path(executable).parent)
    full["PATH"] = os.pathsep.join([bin_dir, full.get("PATH", os.defpath)])
    home = Path(full["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    port = int(full.get("AIRFLOW__API__PORT", DEFAULT_PORT))
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [executable, "standalone"],
            env=full,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return AirflowProcess(airflow_url(port), home, log_file, process)


def _airflow_executable() -> str | None:
    beside = Path(sys.executable).parent / "airflow"
    if beside.exists():
        return str(beside)
    return shutil.which("airflow")


def _tree(leader: int) -> list[psutil.Process]:
    """The live processes of ``leader``'s process group and every descendant of ``leader``."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):  # the leader may be gone, its group not
        descendants = psutil.Process(leader).children(recursive=True)
        found.update((child.pid, child) for child in descendants)
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError):  # ended meanwhile
            if os.getpgid(proc.pid) == leader:
                found.setdefault(proc.pid, proc)
    return [proc for proc in found.values() if _alive(proc)]


def _command_line(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return f"pid {proc.pid}"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _log_tail(path: Path, lines: int = 10) -> str:
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n" + "\n".join(tail)) if tail else ""
