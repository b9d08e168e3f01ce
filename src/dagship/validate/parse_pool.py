"""A pool of long-lived parse workers forked from one process that imported Airflow.

``parse_worker.py serve`` runs with the environment's interpreter in its own process group,
imports Airflow once and forks a worker whenever asked; each worker connects back over a Unix
socket and parses files one at a time. One thread per worker hands it the next file and waits
for the answer. Airflow's own per-file timeout stops a slow import inside the worker; a worker
that does not answer shortly after that (a hang Airflow's alarm cannot interrupt) or that dies
is killed, the file is reported, and a freshly forked worker takes over the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

WORKER_SCRIPT = Path(__file__).with_name("parse_worker.py")
STARTUP_TIMEOUT = 300.0
# Time given past Airflow's own timeout before the worker is considered hung.
GRACE_SECONDS = 5.0


class WorkerError(RuntimeError):
    """The workers could not start: Airflow missing or broken in the environment."""


def _receive(stream: IO[bytes], timeout: float) -> dict[str, Any] | None:
    """The next JSON line, or None on timeout or end of stream."""
    ready, _, _ = select.select([stream], [], [], max(0.0, timeout))
    if not ready:
        return None
    line = stream.readline()
    if not line:
        return None
    message: dict[str, Any] = json.loads(line)
    return message


class Forkserver:
    """The process that imported Airflow; it forks workers that connect to ``socket_path``."""

    def __init__(self, python: Path, project: Path, dags: Path, env: Mapping[str, str], home: Path):
        self.log = home / "workers.log"
        self.socket_path = home / "workers.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.socket_path))
        self.listener.listen()
        self.lock = threading.Lock()
        command = [str(python), str(WORKER_SCRIPT), "serve", str(project), str(dags)]
        command.append(str(self.socket_path))
        with self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=project,
                env=dict(env),
                start_new_session=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.commands: IO[bytes] = self.proc.stdin
        message = _receive(self.proc.stdout, STARTUP_TIMEOUT)
        if message is None or not message.get("ready"):
            detail = message.get("fatal") if message else None
            self.close()
            raise WorkerError(detail or self._log_tail())

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] or "no output"

    def fork(self) -> Worker:
        """A new worker, connected and ready."""
        with self.lock:
            try:
                self.commands.write(b"fork\n")
                self.commands.flush()
            except OSError as exc:
                raise WorkerError(self._log_tail()) from exc
            self.listener.settimeout(STARTUP_TIMEOUT)
            try:
                connection, _ = self.listener.accept()
            except OSError as exc:
                raise WorkerError(f"no worker connected: {self._log_tail()}") from exc
        worker = Worker(connection)
        hello = _receive(worker.reader, STARTUP_TIMEOUT)
        if hello is None or not hello.get("ready"):
            worker.kill()
            raise WorkerError(self._log_tail())
        worker.pid = int(hello["pid"])
        return worker

    def close(self) -> None:
        """Stop the forkserver, its workers and anything a DAG file started."""
        with contextlib.suppress(OSError):
            self.commands.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.listener.close()


class Worker:
    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.reader: IO[bytes] = connection.makefile("rb")
        self.pid = 0

    def parse(self, path: str, timeout: float) -> dict[str, Any]:
        """The worker's answer for one file, or ``{"failure": "hung" | "died"}`` (the worker
        is then killed and must be replaced)."""
        answer = None
        started = time.monotonic()
        with contextlib.suppress(OSError):
            self.connection.sendall(json.dumps({"path": path}).encode() + b"\n")
            answer = _receive(self.reader, timeout + GRACE_SECONDS)
        if answer is not None:
            return answer
        hung = time.monotonic() - started >= timeout + GRACE_SECONDS
        self.kill()
        return {"path": path, "failure": "hung" if hung else "died"}

    def kill(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.reader.close()
            self.connection.close()


def run_pool(
    files: list[str],
    *,
    workers: int,
    timeout: float,
    forkserver: Forkserver,
    on_result: Callable[[str, dict[str, Any]], None],
) -> None:
    """Parse ``files`` with up to ``workers`` workers, calling ``on_result(path, answer)``."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for path in files:
        todo.put(path)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def serve() -> None:
        worker: Worker | None = None
        try:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                if worker is None:
                    worker = forkserver.fork()
                answer = worker.parse(path, timeout)
                with lock:
                    on_result(path, answer)
                if "failure" in answer:
                    worker = None  # killed: the next file gets a fresh worker
        except BaseException as exc:
            failures.append(exc)
        finally:
            if worker is not None:
                worker.stop()

    threads = [threading.Thread(target=serve, daemon=True) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
