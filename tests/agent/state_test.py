"""The state file and the leftovers of an agent that was killed: real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

from dagship.agent.state import (
    HostState,
    RecordedProcess,
    is_alive,
    kill_leftovers,
    load_state,
    save_state,
    start_time,
)


def _orphan(script: str) -> int:
    """The pid of a process in its own group whose parent has exited: what a killed agent
    leaves behind."""
    launcher = (
        "import subprocess, sys\n"
        f"p = subprocess.Popen([sys.executable, '-c', {script!r}], start_new_session=True,\n"
        "    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid)\n"
    )
    done = subprocess.run([sys.executable, "-c", launcher], capture_output=True, check=True)
    return int(done.stdout)


PARENT_AND_CHILD = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "time.sleep(600)\n"
)


def test_state_round_trips_and_a_missing_or_broken_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "agent-state.json"
    assert load_state(path) == HostState()
    state = HostState(current="sha256-a", previous="sha256-b", target="sha256-c")
    state.record(RecordedProcess("scheduler", 12, 3.5, "sha256-a"))
    save_state(path, state)
    assert load_state(path) == state
    path.write_text("{not json")
    assert load_state(path) == HostState()


def test_leftover_groups_are_ended_with_their_children(tmp_path: Path) -> None:
    pid = _orphan(PARENT_AND_CHILD)
    time.sleep(0.5)
    (child,) = psutil.Process(pid).children()
    recorded = RecordedProcess("scheduler", pid, start_time(pid), "sha256-a")
    assert is_alive(recorded)
    started = time.monotonic()
    assert kill_leftovers([recorded], timeout=5) == ["scheduler"]
    assert time.monotonic() - started < 3
    assert not is_alive(recorded)
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE


def test_a_reused_pid_is_not_mistaken_for_a_leftover() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        # Same pid, another start time: another program that got the pid.
        stranger = RecordedProcess("scheduler", proc.pid, start_time(proc.pid) - 100, "v")
        assert kill_leftovers([stranger], timeout=1) == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
