"""What the host runs, saved in ``agent-state.json`` so that a restarted agent (after a crash,
``kill -9`` included) knows which version to bring up and which processes are its leftovers.

The agent writes it (atomically, fsynced) before and after each step of a switch:

- ``current``: the project version the components run (or ran when the agent died);
- ``previous``: the one before it (kept on disk, the fallback of a failed start);
- ``target``: the version being applied, if any;
- ``processes``: every process group the agent started and has not seen end (component and
  build), with its start time so that a reused pid is never mistaken for one of them;
- ``last_apply``: whether the last apply built its environment or reused a cached one;
- ``environments``: the environment folder of each version kept on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from dagship.files import write_atomic


@dataclass(frozen=True)
class RecordedProcess:
    """A process group leader the agent started: a component or a build."""

    name: str
    pid: int
    started_at: float
    version: str


@dataclass
class HostState:
    current: str | None = None
    previous: str | None = None
    target: str | None = None
    processes: list[RecordedProcess] = field(default_factory=list)
    # The Airflow version the metadata database was last migrated for (None: never).
    migrated_for: str | None = None
    # The last apply: {"version", "environment": "built" | "reused", "seconds"}.
    last_apply: dict[str, object] = field(default_factory=dict)
    # The environment folder of each version on the host: a version seen before (a rollback)
    # finds its environment without starting a build.
    environments: dict[str, str] = field(default_factory=dict)

    def record(self, process: RecordedProcess) -> None:
        self.processes = [p for p in self.processes if p.pid != process.pid] + [process]

    def forget(self, pid: int) -> None:
        self.processes = [p for p in self.processes if p.pid != pid]


def load_state(path: Path) -> HostState:
    """The saved state, or an empty one when there is none (an unreadable file is treated as
    none: the agent then starts from the server's current version)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return HostState()
    if not isinstance(data, dict):
        return HostState()
    processes = [RecordedProcess(**item) for item in data.pop("processes", [])]
    known = {key: value for key, value in data.items() if key in HostState.__dataclass_fields__}
    return HostState(processes=processes, **known)


def save_state(path: Path, state: HostState) -> None:
    write_atomic(path, json.dumps(asdict(state), indent=2) + "\n", fsync=True)


def start_time(pid: int) -> float:
    """When the process ``pid`` started (psutil's create time), 0.0 if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def is_alive(process: RecordedProcess) -> bool:
    """Whether ``process`` still runs: same pid and same start time (not a reused pid)."""
    try:
        proc = psutil.Process(process.pid)
        return abs(proc.create_time() - process.started_at) < 1.0 and proc.is_running()
    except psutil.Error:
        return False


def kill_leftovers(processes: list[RecordedProcess], timeout: float = 30.0) -> list[str]:
    """End the process groups of ``processes`` that still run (an agent that died leaves its
    components and builds behind): SIGTERM, then SIGKILL after ``timeout``. The names of the
    ones that were still running."""
    alive = [p for p in processes if is_alive(p)]
    # Task processes may have moved to their own group: found as descendants, while their
    # leader still runs.
    descendants: list[psutil.Process] = []
    for process in alive:
        with contextlib.suppress(psutil.Error):
            descendants += psutil.Process(process.pid).children(recursive=True)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in alive:
            _signal_group(process.pid, sig)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.send_signal(sig)
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and (
            any(_group_alive(p.pid) for p in alive) or any(_running(c) for c in descendants)
        ):
            time.sleep(0.2)
    return [p.name for p in alive]


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
