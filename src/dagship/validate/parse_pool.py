"""A pool of long-lived parse workers forked from one process that imported Airflow.

``parse_worker.py serve`` (the forkserver) runs with the environment's interpreter in its own
process group, imports Airflow once and forks a worker for each connection to its Unix socket;
each worker parses files one at a time over that connection. One thread per worker hands it
the next file and waits for the answer. Airflow's own per-file timeout stops a slow import
inside the worker; a worker that does not answer shortly after that (a hang Airflow's alarm
cannot interrupt) or that dies is killed, the file is reported, and a freshly forked worker
takes over the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
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
    """The process that imported Airflow and forks workers: started, or found still running.

    ``home`` holds its control socket, pid file and log. With ``idle`` > 0 it is left running
    after the parse and exits by itself after ``idle`` seconds without work, so the next parse
    of the same project in the same environment skips importing Airflow; with 0 ``close``
    stops it.
    """

    def __init__(
        self,
        python: Path,
        project: Path,
        dags: Path,
        env: Mapping[str, str],
        home: Path,
        idle: float = 0,
        preload: list[str] | None = None,
    ):
        self.python, self.project, self.dags = python, project, dags
        self.env = dict(env)
        self.home = home
        self.idle = idle
        self.log = home / "forkserver.log"
        self.control = home / "control.sock"
        self.pid_file = home / "forkserver.pid"
        self.preload = preload or []
        self.lock = threading.Lock()
        self.reused = self._alive()
        if not self.reused:
            self._start()

    def _alive(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.control))
            except OSError:
                return False
        return True

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / "start.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one start at a time for this project
            if self._alive():
                return
            with contextlib.suppress(FileNotFoundError):
                self.control.unlink()  # left by a forkserver that was killed
            command = [str(self.python), str(WORKER_SCRIPT), "serve", str(self.project)]
            preload = self.home / "preload.json"
            preload.write_text(json.dumps(self.preload), encoding="utf-8")
            command += [str(self.dags), str(self.control), f"{self.idle:g}", str(preload)]
            with self.log.open("ab") as stderr:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    cwd=self.project,
                    env=self.env,
                    start_new_session=True,
                )
            assert proc.stdout is not None
            message = _receive(proc.stdout, STARTUP_TIMEOUT)
            proc.stdout.close()
            if message is None or not message.get("ready"):
                _kill_group(proc.pid)
                proc.wait()
                detail = message.get("fatal") if message else None
                raise WorkerError(detail or self._log_tail())
            self.pid_file.write_text(str(proc.pid))
            # Waited for by close() in this process, or adopted by init when left running.
            self.proc = proc

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:] or "no output"
        except OSError:
            return "no output"

    def fork(self) -> Worker:
        """A new worker, connected and ready."""
        with self.lock:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(str(self.control))
            except OSError:
                connection.close()
                self._start()  # it went away (idle exit, killed): start it again
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect(str(self.control))
        worker = Worker(connection)
        connection.sendall(json.dumps({"env": self.env}).encode() + b"\n")
        hello = _receive(worker.reader, STARTUP_TIMEOUT)
        if hello is None or not hello.get("ready"):
            worker.kill()
            raise WorkerError(self._log_tail())
        worker.pid = int(hello["pid"])
        return worker

    def close(self) -> None:
        """Stop the forkserver unless it is meant to stay for the next parse."""
        if self.idle > 0:
            return
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        _kill_group(pid)
        proc = getattr(self, "proc", None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def stop_forkservers(base: Path, project: Path) -> int:
    """Stop the forkservers under ``base`` serving ``project``; the number stopped."""
    stopped = 0
    for pid_file in base.glob("*/forkserver.pid"):
        try:
            pid = int(pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if str(project).encode() in command and str(WORKER_SCRIPT).encode() in command:
            _kill_group(pid)
            stopped += 1
    return stopped


def _kill_group(pid: int) -> None:
    """End a forkserver, its workers and anything a DAG file started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


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
