"""A pool of long-lived parse workers forked from one process that imported Airflow.

``parse_worker.py serve`` (the forkserver) runs with the environment's interpreter in its own
process group, lists the DAG files, imports Airflow once and forks a worker for each connection
to its Unix socket; each worker parses files one at a time over that connection. One thread per
worker hands it the next file and waits for the answer. Airflow's own per-file timeout stops a
slow import inside the worker; a worker that does not answer shortly after that (a hang
Airflow's alarm cannot interrupt) or that dies is killed, the file is reported, and a freshly
forked worker takes over the rest.

Each worker has its next file before it finishes the current one (``IN_FLIGHT`` requests): it
goes from one file to the next without waiting for this process to read the answer and send
another path, a round trip that costs a wait for a core each time on a busy machine.
"""

from __future__ import annotations

import collections
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

import psutil

from dagship.core.errors import DagshipError
from dagship.files import write_atomic

WORKER_SCRIPT = Path(__file__).with_name("parse_worker.py")
STARTUP_TIMEOUT = 300.0
# Time given past Airflow's own timeout before the worker is considered hung.
GRACE_SECONDS = 5.0
# Requests sent to a worker ahead of its answers: the file it parses and the next one.
IN_FLIGHT = 2


class WorkerError(DagshipError):
    """The workers could not start: Airflow missing or broken in the environment."""


class Lines:
    """JSON lines read from a pipe or socket, each waited for with a timeout."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None on timeout or end of stream."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message


class Forkserver:
    """The process that lists the DAG files, imports Airflow and forks workers: started, or
    found still running.

    Creating it does not wait: the files are being listed (by the starting forkserver, or by
    a worker of a running one) while the caller goes on; ``list_files`` waits for the listing,
    and ``fork`` for the forkserver to be ready. ``home`` holds its control socket, pid file
    and log. With ``idle`` > 0 it is left running after a parse and exits by itself after
    ``idle`` seconds without work, so the next parse of the same project in the same
    environment skips importing Airflow; with 0 ``close`` stops it.
    """

    def __init__(
        self,
        python: Path,
        project: Path,
        dags: Path,
        env: Mapping[str, str],
        home: Path,
        idle: float = 0,
    ):
        self.python, self.project, self.dags = python, project, dags
        self.env = dict(env)
        self.home = home
        self.idle = idle
        self.log = home / "forkserver.log"
        self.control = home / "control.sock"
        self.pid_file = home / "forkserver.pid"
        self.lock = threading.Lock()
        # Set while the forkserver this process started is not ready yet.
        self.proc: subprocess.Popen[bytes] | None = None
        self.status: Lines | None = None
        self.start_lock: IO[str] | None = None
        self.reused = self._alive()
        if not self.reused:
            self._start()
        # The worker asked for the listing of a running forkserver, then the first one forked.
        self.spare: Worker | None = None
        if self.status is None:
            self.spare = self._connect()
            self.spare.send({"list": True})

    def _alive(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.control))
            except OSError:
                return False
        return True

    def _start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        # One start at a time for this project: held until the forkserver is ready.
        self.start_lock = (self.home / "start.lock").open("a")
        fcntl.flock(self.start_lock, fcntl.LOCK_EX)
        if self._alive():  # started by another parse while this one waited
            self._release()
            self.reused = True
            return
        with contextlib.suppress(FileNotFoundError):
            self.control.unlink()  # left by a forkserver that was killed
        command = [str(self.python), str(WORKER_SCRIPT), "serve", str(self.project)]
        command += [str(self.dags), str(self.control), f"{self.idle:g}"]
        with self.log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.project,
                env=self.env,
                start_new_session=True,
            )
        assert self.proc.stdout is not None
        self.status = Lines(self.proc.stdout.fileno())
        write_atomic(self.pid_file, str(self.proc.pid))

    def _release(self) -> None:
        if self.start_lock is not None:
            self.start_lock.close()  # and with it the lock
            self.start_lock = None

    def _status(self, expected: str) -> dict[str, Any]:
        """The next message of the starting forkserver; a WorkerError if it is not ``expected``."""
        assert self.status is not None and self.proc is not None
        message = self.status.next(STARTUP_TIMEOUT)
        if message is None or expected not in message:
            _kill_group(self.proc.pid)
            self.proc.wait()
            self._started()
            detail = message.get("fatal") if message else None
            raise WorkerError(detail or self._log_tail())
        return message

    def _ready(self) -> None:
        """Wait until the forkserver this process is starting accepts connections."""
        if self.status is not None:
            self._status("ready")
            self._started()

    def _started(self) -> None:
        """Done with starting: nothing more is read from the forkserver, others may use it."""
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.status = None
        self._release()

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:] or "no output"
        except OSError:
            return "no output"

    def list_files(self) -> list[str]:
        """The DAG files, as listed in the deployment's environment."""
        if self.status is not None:
            listing = self._status("listing")["listing"]
        else:
            assert self.spare is not None, "list_files is asked once, before fork"
            self._hello(self.spare)
            listing = self.spare.receive(STARTUP_TIMEOUT)
            if listing is None:
                self.spare.kill()
                raise WorkerError(self._log_tail())
        return list(listing["files"])

    def fork(self) -> Worker:
        """A new worker, connected and ready."""
        with self.lock:
            if self.spare is not None:
                worker, self.spare = self.spare, None
            else:
                self._ready()
                worker = self._connect()
        self._hello(worker)
        return worker

    def _connect(self) -> Worker:
        """A connection to a new worker, given this command's environment (not answered yet)."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(self.control))
        except OSError:
            connection.close()
            self._start()  # it went away (idle exit, killed): start it again
            if self.status is not None:
                self._status("listing")
            self._ready()
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(self.control))
        worker = Worker(connection)
        worker.send({"env": self.env})
        return worker

    def _hello(self, worker: Worker) -> None:
        """Wait for a new worker's first answer: it runs, with this command's environment."""
        if worker.pid:
            return
        hello = worker.receive(STARTUP_TIMEOUT)
        if hello is None or not hello.get("ready"):
            worker.kill()
            raise WorkerError(self._log_tail())
        worker.pid = int(hello["pid"])

    def close(self) -> None:
        """Stop the forkserver unless it is meant to stay for the next parse. One this
        process started but never used (nothing needed parsing) is stopped too: it may not
        be ready yet, and nothing waits for it."""
        if self.spare is not None:
            self.spare.stop()
        # Still starting (self.status set): this process never waited for it, never used it.
        if self.idle > 0 and self.status is None:
            return
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        _kill_group(pid)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self._started()


def stop_forkservers(base: Path, project: Path) -> int:
    """Stop the forkservers under ``base`` serving ``project``; the number stopped."""
    stopped = 0
    for pid_file in base.glob("*/forkserver.pid"):
        try:
            pid = int(pid_file.read_text())
            process = psutil.Process(pid)
            command = process.cmdline()
        except (OSError, ValueError, psutil.Error):
            continue
        # The pid may have been reused by another program since: check it is our forkserver.
        if str(project) in command and str(WORKER_SCRIPT) in command:
            _kill_group(pid)
            _wait_ended(process)
            pid_file.unlink(missing_ok=True)
            stopped += 1
    return stopped


def _wait_ended(process: psutil.Process, timeout: float = 10.0) -> None:
    """Wait until a killed process has ended: on a busy machine a process may take a while
    to run its end, and until then it still looks like a running forkserver."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(psutil.Error):
        while process.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.01)


def _kill_group(pid: int) -> None:
    """End a forkserver, its workers and anything a DAG file started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class Worker:
    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.reader = Lines(connection.fileno())
        self.pid = 0

    def send(self, message: dict[str, Any]) -> None:
        """Send one request (a worker that went away is noticed by ``receive``)."""
        with contextlib.suppress(OSError):
            self.connection.sendall(json.dumps(message).encode() + b"\n")

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None if none came within ``timeout`` or the worker went away."""
        try:
            return self.reader.next(timeout)
        except OSError:
            return None

    def kill(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
        self.stop()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
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
        # The paths sent to ``worker`` and not answered yet, in the order it parses them.
        sent: collections.deque[str] = collections.deque()
        try:
            while True:
                while len(sent) < IN_FLIGHT:
                    try:
                        path = todo.get_nowait()
                    except queue.Empty:
                        break
                    if worker is None:
                        worker = forkserver.fork()
                    worker.send({"path": path})
                    sent.append(path)
                if worker is None or not sent:
                    return
                # The worker starts a file when it has answered the one before: the time
                # allowed counts from then.
                started = time.monotonic()
                answer = worker.receive(timeout + GRACE_SECONDS)
                path = sent.popleft()
                if answer is None:
                    hung = time.monotonic() - started >= timeout + GRACE_SECONDS
                    worker.kill()
                    worker = None  # the next file gets a fresh worker
                    answer = {"path": path, "failure": "hung" if hung else "died"}
                    while sent:  # sent but never started: parsed by a fresh worker
                        todo.put(sent.popleft())
                with lock:
                    on_result(path, answer)
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
