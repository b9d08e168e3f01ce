"""How the quickstart recognizes the local Airflow an earlier quickstart left running (by its
pid file): a process is taken for it only if it is an ``airflow standalone``; its API port
comes from its environment. The real Airflow runs in tests/cli/quickstart_test.py."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dagship.local.quickstart import DEFAULT_AIRFLOW_PORT, _airflow_port

SLEEPER = "import sys, time\nprint('up', flush=True)\ntime.sleep(600)\n"


@contextmanager
def running(command: list[str], env: Mapping[str, str]) -> Iterator[int]:
    base = {k: v for k, v in os.environ.items() if k != "AIRFLOW__API__PORT"}
    process = subprocess.Popen(command, env={**base, **env}, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"up\n"  # running, arguments and environment set
        yield process.pid
    finally:
        process.kill()
        process.wait()


def fake_airflow(folder: Path) -> Path:
    """An executable called ``airflow``: its command line is that of the real one."""
    script = folder / "bin" / "airflow"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!{sys.executable}\n{SLEEPER}")
    script.chmod(0o755)
    return script


def test_an_airflow_standalone_is_recognized_with_its_port(tmp_path: Path) -> None:
    airflow = fake_airflow(tmp_path)
    with running([str(airflow), "standalone"], {"AIRFLOW__API__PORT": "18123"}) as pid:
        assert _airflow_port(pid) == 18123


def test_without_a_port_setting_it_is_airflows_default(tmp_path: Path) -> None:
    airflow = fake_airflow(tmp_path)
    with running([str(airflow), "standalone"], {}) as pid:
        assert _airflow_port(pid) == DEFAULT_AIRFLOW_PORT


def test_other_processes_are_not_taken_for_airflow(tmp_path: Path) -> None:
    airflow = fake_airflow(tmp_path)
    port = {"AIRFLOW__API__PORT": "18123"}
    # A reused pid: another program, or another airflow command.
    with running([sys.executable, "-c", SLEEPER], port) as pid:
        assert _airflow_port(pid) is None
    with running([str(airflow), "scheduler"], port) as pid:
        assert _airflow_port(pid) is None
    assert _airflow_port(pid) is None  # gone


def test_the_agent_that_runs_the_local_airflow_is_recognized(tmp_path: Path) -> None:
    """Since quickstart runs Airflow through `dagship agent run`, its pid file names the
    agent, which stands for the Airflow it runs."""
    dagship = tmp_path / "bin" / "dagship"
    dagship.parent.mkdir(parents=True)
    dagship.write_text(f"#!{sys.executable}\n{SLEEPER}")
    dagship.chmod(0o755)
    command = [str(dagship), "agent", "run", "-d", "local", "--component", "standalone"]
    with running(command, {"AIRFLOW__API__PORT": "18124"}) as pid:
        assert _airflow_port(pid) == 18124
    with running([str(dagship), "agent", "run", "-d", "local", "-c", "scheduler"], {}) as pid:
        assert _airflow_port(pid) is None


def test_busy_log_server_ports_move_to_free_ones_and_say_so() -> None:
    from dagship.local.quickstart import _free_log_server_ports, _port_in_use

    holder = socket.socket()
    try:
        with contextlib.suppress(OSError):  # taken already (another Airflow here): fine too
            holder.bind(("127.0.0.1", 8793))
            holder.listen()
        env: dict[str, str] = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "9999"}
        messages = _free_log_server_ports(env)
        moved = int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])
        assert moved != 8793 and not _port_in_use(moved)
        assert messages[0] == (
            f"Port 8793 (Airflow's task log server) is in use: the local Airflow uses {moved}"
        )
        # A port the user set is theirs, busy or not.
        assert env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "9999"
        assert len(messages) == 1
    finally:
        holder.close()
