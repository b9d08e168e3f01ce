"""A local Apache Airflow (``airflow standalone``) wired to a dagship deployment.

``airflow_env`` builds the environment variables that configure Airflow: its home, an SQLite
database, the LocalExecutor with few workers, the dagship DAG bundle for one deployment and
settings that make a deploy show up within seconds. ``start_airflow`` runs ``airflow
standalone`` with them in its own process group; ``AirflowProcess.stop`` ends that group and
every process Airflow started, including task processes that moved to their own group.

Used by ``dagship quickstart`` and by the tests and benchmarks that need a real Airflow. This
module needs only the standard library and httpx: Airflow itself runs in the subprocess.
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

import httpx

from dagship.core import naming
from dagship.core.errors import DagshipError

DEFAULT_PORT = 8080
ADMIN_USER = "admin"
TOKEN_ENV = "DAGSHIP_API_TOKEN"
BUNDLE_CLASSPATH = "dagship.airflow.DagshipDagBundle"
# Written by Airflow's simple auth manager on first start (Airflow 3.x).
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
HEALTH_PATH = "/api/v2/monitor/health"
INSTALL_HINT = "install it with `pip install 'dagship[airflow]'` (apache-airflow 3.3)"


class AirflowRuntimeError(DagshipError):
    """Airflow is missing, did not become ready, or stopped on its own."""


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
) -> dict[str, str]:
    """The environment variables that make a local Airflow run the dagship bundle.

    Only the variables that configure Airflow are returned (merge them over ``os.environ``, as
    ``start_airflow`` does). ``bundle_name`` defaults to ``dagship-<deployment>``. With ``fast``
    (default) the bundle's refresh runs on every loop of the DAG processor (its listener
    makes that free: bundle.py) and changed DAGs are reparsed and
    re-serialized within seconds; without it Airflow's own intervals apply (5 minutes).
    Override any variable by updating the returned dict.
    """
    home = Path(airflow_home).absolute()
    refresh = 0 if fast else 300
    # Tasks reach the Execution API at this address; "localhost" may resolve to ::1 first.
    local_host = "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Code comes only from the dagship bundle; the classic dags folder stays empty.
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # LocalExecutor forks this many workers up front: keep a laptop (or CI box) responsive.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # Task processes call the Execution API; its default URL assumes port 8080.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{local_host}:{port}/execution/",
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            bundle_config(dagship_url, deployment, bundle_name, refresh)
        ),
        # The default (/tmp/airflow/dag_bundles) is shared by every Airflow on the machine.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
        TOKEN_ENV: token,
    }
    if fast:
        env.update(
            {
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(refresh),
                "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "0",
                # Changed files are parsed first (sort by mtime); this bounds the rest.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                # Default 30 s: a DAG re-parsed sooner is not re-serialized, so a quick second
                # deploy would not show up.
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
            }
        )
    return env


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
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data) + "\n")
    os.replace(tmp, path)
    return password


def airflow_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """Airflow's ``/api/v2/monitor/health`` document at ``url``, or None if nothing answers."""
    try:
        response = httpx.get(url.rstrip("/") + HEALTH_PATH, timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def is_healthy(document: Mapping[str, Any] | None) -> bool:
    """Whether the database, scheduler and DAG processor all report ``healthy``."""
    if not document:
        return False
    for part in ("metadatabase", "scheduler", "dag_processor"):
        status = document.get(part)
        if not isinstance(status, Mapping) or status.get("status") != "healthy":
            return False
    return True


def api_token(url: str, username: str, password: str | None, timeout: float = 10.0) -> str:
    """A JWT for Airflow's REST API (simple auth manager): with a password, or without one
    when ``[core] simple_auth_manager_all_admins`` is on."""
    endpoint = url.rstrip("/") + "/auth/token"
    response = None
    if password is not None:
        response = httpx.post(
            endpoint, json={"username": username, "password": password}, timeout=timeout
        )
    if response is None or response.status_code >= 400:
        # No password, or one that all-admins mode ignores: try the credential-less token.
        fallback = httpx.get(endpoint, timeout=timeout)
        if response is None or fallback.status_code < 400:
            response = fallback
    if response.status_code >= 400:
        raise AirflowRuntimeError(
            f"Airflow at {url} refused a REST API token ({response.status_code}): "
            f"{response.text[:200]}"
        )
    return str(response.json()["access_token"])


@dataclass(frozen=True)
class ParsedVersion:
    """What Airflow made of one bundle version: the DAG ids at that version and the import
    errors of the bundle (``{"filename", "stack_trace"}``)."""

    dags: list[str]
    import_errors: list[dict[str, str]]


def parsed_version(
    url: str, jwt: str, bundle_name: str
) -> tuple[dict[str, str | None], list[dict[str, str]]]:
    """``{dag_id: bundle_version}`` of the bundle's DAGs and its import errors, from the
    REST API (v2)."""
    headers = {"Authorization": f"Bearer {jwt}"}
    base = url.rstrip("/") + "/api/v2"
    versions: dict[str, str | None] = {}
    offset = 0
    while True:
        response = httpx.get(
            base + "/dags",
            params={"bundle_name": bundle_name, "limit": 100, "offset": offset},
            headers=headers,
            timeout=10,
        )
        response.raise_for_status()
        page = response.json()
        for dag in page["dags"]:
            versions[dag["dag_id"]] = dag.get("bundle_version")
        offset += len(page["dags"])
        if not page["dags"] or offset >= page["total_entries"]:
            break
    response = httpx.get(base + "/importErrors", params={"limit": 100}, headers=headers, timeout=10)
    response.raise_for_status()
    errors = [
        {"filename": str(item.get("filename")), "stack_trace": str(item.get("stack_trace"))}
        for item in response.json()["import_errors"]
        if item.get("bundle_name") in (None, bundle_name)
    ]
    return versions, errors


def wait_for_version(
    url: str, jwt: str, bundle_name: str, version: str, timeout: float = 120.0
) -> ParsedVersion:
    """Wait until Airflow has parsed ``version`` of the bundle: every DAG of the bundle is at
    that version (or there are only import errors). Raises ``AirflowRuntimeError`` naming the
    import errors on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            versions, errors = parsed_version(url, jwt, bundle_name)
        except httpx.HTTPError:
            versions, errors = {}, []
        at_version = sorted(d for d, v in versions.items() if v == version)
        if versions and len(at_version) == len(versions):
            return ParsedVersion(at_version, errors)
        if not versions and errors:
            return ParsedVersion([], errors)
        if time.monotonic() > deadline:
            detail = "".join(f"\n  {e['filename']}: {e['stack_trace'][-500:]}" for e in errors)
            raise AirflowRuntimeError(
                f"Airflow at {url} did not parse DAG version {version} of bundle {bundle_name} "
                f"within {timeout:.0f}s ({len(at_version)} of {len(versions)} DAGs at it)"
                + (f"; import errors:{detail}" if detail else "")
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
    _known: set[int] = field(default_factory=set, repr=False)

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        """Pid of ``airflow standalone``, which is also its process group id."""
        return self.process.pid if self.process is not None else None

    def pids(self) -> set[int]:
        """Live processes of this Airflow: its group and every descendant (task processes
        move to their own group)."""
        if self.process is None:
            return set()
        found = _group_members(self.process.pid) | _descendants(self.process.pid)
        self._known |= found
        return {pid for pid in self._known if _alive(pid)}

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until the API server answers and reports the scheduler and DAG processor
        healthy; raise ``AirflowRuntimeError`` (after stopping it) on timeout or early exit."""
        deadline = time.monotonic() + timeout
        while not is_healthy(health(self.url)):
            if self.process is not None and self.process.poll() is not None:
                self.stop()
                raise AirflowRuntimeError(
                    f"Airflow exited with code {self.process.returncode} while starting: "
                    f"see {self.log_file}{_log_tail(self.log_file)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AirflowRuntimeError(
                    f"Airflow was not ready at {self.url} within {timeout:.0f}s: "
                    f"see {self.log_file}{_log_tail(self.log_file)}"
                )
            self.pids()
            time.sleep(1.0)
        self.pids()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the process group and every descendant, then SIGKILL what is left after
        ``timeout``. Safe to call twice; does nothing for an Airflow we did not start."""
        if self.process is None:
            return
        targets = self.pids()
        _signal_group(self.process.pid, signal.SIGTERM)
        for pid in targets:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.2)
            if not self.pids():
                return
        _signal_group(self.process.pid, signal.SIGKILL)
        for pid in self.pids():
            _signal(pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 5
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)


def start_airflow(
    env: Mapping[str, str],
    log_file: Path,
    base_env: Mapping[str, str] | None = None,
) -> AirflowProcess:
    """Start ``airflow standalone`` with ``env`` over ``base_env`` (default ``os.environ``),
    in its own process group, logging to ``log_file``. Returns at once: call ``wait_ready``.
    """
    executable = _airflow_executable()
    if executable is None:
        raise AirflowRuntimeError(f"Apache Airflow is not installed: {INSTALL_HINT}")
    full = {**(os.environ if base_env is None else base_env), **env}
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


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _proc_stats() -> dict[int, tuple[str, int, int]]:
    """pid → (state, ppid, pgrp) for every process, from /proc (Linux)."""
    stats: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after its last ")".
        fields = raw[raw.rfind(")") + 2 :].split()
        stats[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return stats


def _group_members(pgid: int) -> set[int]:
    return {pid for pid, (state, _, pgrp) in _proc_stats().items() if pgrp == pgid and state != "Z"}


def _descendants(root: int) -> set[int]:
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and stats[child][0] != "Z":
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2 :].split()[0] != "Z"


def _log_tail(path: Path, lines: int = 10) -> str:
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n" + "\n".join(tail)) if tail else ""
