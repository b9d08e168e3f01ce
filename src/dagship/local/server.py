"""A dagship server on this machine, started and stopped by ``dagship quickstart``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from dagship.client.settings import ADMIN_TOKEN_FILE
from dagship.core.durations import format_duration
from dagship.files import write_atomic
from dagship.local.errors import LocalError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
PID_FILE = "server.pid"
LOG_FILE = "server.log"


@dataclass
class LocalServer:
    url: str
    home: Path
    # None when a server was already answering at ``url``: it is not ours to stop.
    process: subprocess.Popen[bytes] | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def token_file(self) -> Path:
        return self.home / ADMIN_TOKEN_FILE

    @property
    def log_file(self) -> Path:
        return self.home / LOG_FILE


def local_url(port: int, host: str = DEFAULT_HOST) -> str:
    return f"http://{host}:{port}"


def server_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a dagship server answers ``GET /healthz`` at ``url``."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=timeout)
        return response.status_code == 200 and response.json().get("status") == "ok"
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def start_local_server(
    home: Path,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    timeout: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> LocalServer:
    """A server answering at ``host:port``: the one already there, or a new one for ``home``.

    A new server runs in its own process group with ``DAGSHIP_HOME=home`` (embedded
    database and blob store under it) and ``extra_env``, and logs to ``home/server.log``.
    """
    url = local_url(port, host)
    if server_answers(url):
        return LocalServer(url, home)
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {}), "DAGSHIP_HOME": str(home)}
    with (home / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagship", "server", "--host", host, "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LocalServer(url, home, process)
    deadline = time.monotonic() + timeout
    while not (server_answers(url) and server.token_file.exists()):
        if process.poll() is not None:
            raise LocalError(
                f"the dagship server exited with code {process.returncode} while starting: "
                f"see {server.log_file}{_log_tail(server.log_file)}"
            )
        if time.monotonic() > deadline:
            stop_local_server(server)
            raise LocalError(
                f"the dagship server did not answer at {url} within {format_duration(timeout)}: "
                f"see {server.log_file}"
            )
        time.sleep(0.1)
    return server


def stop_local_server(server: LocalServer, timeout: float = 10.0) -> None:
    """Stop a server this process started: SIGTERM, then SIGKILL after ``timeout``."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait()


def write_pid_file(server: LocalServer) -> Path | None:
    """Record the pid of a server left running in the background (``home/server.pid``)."""
    if server.pid is None:
        return None
    path = server.home / PID_FILE
    write_atomic(path, f"{server.pid}\n")
    return path


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n" + "\n".join(tail)) if tail else ""
