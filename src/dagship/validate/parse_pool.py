"""A pool of long-lived parse workers: Airflow is imported once per worker, not once per file.

Each worker is ``parse_worker.py serve`` running with the environment's interpreter in its own
process group. One thread per worker hands it the next file and waits for the answer. Airflow's
own per-file timeout stops a slow import inside the worker; a worker that does not answer
shortly after that (a hang Airflow's alarm cannot interrupt) or that dies is killed with its
whole group, the file is reported, and a fresh worker takes over the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
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
    """A worker could not start: Airflow missing or broken in the environment."""


class Worker:
    def __init__(self, python: Path, project: Path, dags: Path, env: Mapping[str, str], log: Path):
        self.log = log
        with log.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [str(python), str(WORKER_SCRIPT), "serve", str(project), str(dags)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=project,
                env=dict(env),
                start_new_session=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def wait_ready(self) -> None:
        message = self._receive(STARTUP_TIMEOUT)
        if message is None or "fatal" in message or not message.get("ready"):
            detail = message.get("fatal") if message else None
            self.kill()
            if not detail:
                detail = self.log.read_text(errors="replace")[-4000:] or "no output"
            raise WorkerError(detail)

    def parse(self, path: str, timeout: float) -> dict[str, Any]:
        """The worker's answer for one file, or ``{"failure": "hung" | "died"}`` (the worker
        is then killed and must be replaced)."""
        answer = None
        with contextlib.suppress(OSError):
            self.stdin.write(json.dumps({"path": path}).encode() + b"\n")
            self.stdin.flush()
            answer = self._receive(timeout + GRACE_SECONDS)
        if answer is not None:
            return answer
        code = self.proc.poll()
        self.kill()
        if code is None:
            return {"path": path, "failure": "hung"}
        return {"path": path, "failure": "died", "exit_code": code}

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.stdout], [], [], remaining)
            if ready:
                line = self.stdout.readline()
                if not line:
                    return None  # the worker died
                message: dict[str, Any] = json.loads(line)
                return message

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.kill()

    def kill(self) -> None:
        """End the worker and anything a DAG file started in its process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.stdin, self.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll()


def run_pool(
    files: list[str],
    *,
    workers: int,
    timeout: float,
    start: Callable[[int], Worker],
    on_result: Callable[[str, dict[str, Any]], None],
) -> None:
    """Parse ``files`` with up to ``workers`` workers, calling ``on_result(path, answer)``."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for path in files:
        todo.put(path)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def serve(number: int) -> None:
        worker: Worker | None = None
        try:
            while True:
                try:
                    path = todo.get_nowait()
                except queue.Empty:
                    return
                if worker is None:
                    worker = start(number)
                    worker.wait_ready()
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

    threads = [
        threading.Thread(target=serve, args=(n,), daemon=True) for n in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
