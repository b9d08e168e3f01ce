"""`dagship quickstart` end to end in a temp folder with a temp DAGSHIP_HOME: server only
(`--no-airflow --detach`), and once with a real Airflow until Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    Cli,
    clean_env,
    create_pg_database,
    drop_pg_database,
    free_port,
    write,
)


@contextlib.contextmanager
def detached(home: Path) -> Iterator[None]:
    """Stop the server quickstart left running (by the pid it wrote) at the end."""
    try:
        yield
    finally:
        pid_file = home / "server.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def database_url(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


def test_quickstart_detach(tmp_path: Path, database_url: str | None) -> None:
    home, folder, port = tmp_path / "home", tmp_path / "work", free_port()
    folder.mkdir()
    env = {"DAGSHIP_HOME": str(home)}
    if database_url:
        env["DAGSHIP_DATABASE_URL"] = database_url
    runner = Cli(None, None, cwd=folder)
    with detached(home):
        result = runner.run(
            "quickstart", "--dir", folder, "--port", str(port), "--detach", "--no-airflow", env=env
        ).ok()
        assert (home / "server.pid").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert any((folder / "dags").glob("*.py")), "an example project is scaffolded"
        assert "local" in result.out

        token = (home / "admin-token").read_text().strip()
        client = Cli(f"http://127.0.0.1:{port}", token)
        deploys = client("deploys", "list", "local", "--json").ok().json()
        assert len(deploys) == 1
        assert deploys[0]["seq"] == 1
        # The quickstart deploys without the parse check (docs/validate.md) and says so.
        assert deploys[0]["checks"] == {"parse": "skipped", "pytest": "not-run"}
        # The deployed project is the scaffolded one: deploying it again changes nothing.
        again = client("deploy", folder, "--deployment", "local", "--json").ok().json()
        assert again["unchanged"] is True

        # "Next" prints commands that work as printed in a new terminal: no activated
        # environment, no DAGSHIP_* variables but the ones it says to export.
        lines = result.out.split("Next (in another terminal):\n", 1)[1].split("\n\n")[0]
        commands = [line.strip() for line in lines.splitlines() if line.strip()]
        assert (
            commands[0].startswith("export DAGSHIP_URL=") and f"DAGSHIP_HOME={home}" in commands[0]
        )
        terminal = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        listed = subprocess.run(
            ["bash", "-c", f"{commands[0]} && {commands[1]} --json"],
            env=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert [d["seq"] for d in json.loads(listed.stdout)] == [1]


def test_quickstart_keeps_an_existing_project(tmp_path: Path) -> None:
    home, folder, port = tmp_path / "home", tmp_path / "mine", free_port()
    write(folder, "dags/my_dag.py", "# my own dag\n")
    with detached(home):
        Cli(None, None, cwd=folder).run(
            "quickstart",
            "--dir",
            folder,
            "--port",
            str(port),
            "--detach",
            "--no-airflow",
            env={"DAGSHIP_HOME": str(home)},
        ).ok()
        assert sorted(p.name for p in (folder / "dags").iterdir()) == ["my_dag.py"]
        token = (home / "admin-token").read_text().strip()
        client = Cli(f"http://127.0.0.1:{port}", token)
        out = client("deploy", folder, "--deployment", "local", "--json").ok().json()
        assert out["unchanged"] is True


def test_quickstart_without_airflow_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Apache Airflow here: the server-only quickstart, saying how to get Airflow."""
    import dagship.local.airflow

    monkeypatch.setattr(dagship.local.airflow, "airflow_installed", lambda: False)
    home, folder, port = tmp_path / "home", tmp_path / "work", free_port()
    folder.mkdir()
    with detached(home):
        result = Cli(None, None, cwd=folder)(
            "quickstart",
            "--dir",
            folder,
            "--port",
            str(port),
            "--detach",
            "--json",
            env={"DAGSHIP_HOME": str(home)},
        ).ok()
        out = result.json()
        assert out["airflow"] is None
        assert "pip install 'dagship[airflow]'" in out["airflow_skipped"]
        assert out["deploy"]["seq"] == 1
        assert not (home / "airflow").exists()


# --------------------------------------------------------------------------- with a real Airflow

# How the test starts the CLI; a list so that a local check can swap in another entry point.
DAGSHIP = [sys.executable, "-m", "dagship"]


def process_tree(root: int) -> set[int]:
    """``root`` and its live descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (entry / "stat").read_text()
                parents[int(entry.name)] = int(raw[raw.rfind(")") + 2 :].split()[1])
    found, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return {pid for pid in found if alive(pid)}


def alive(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rfind(")") + 2 :].split()[0] != "Z"


def group_members(pgid: int) -> set[int]:
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                raw = (entry / "stat").read_text()
                fields = raw[raw.rfind(")") + 2 :].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    members.add(int(entry.name))
    return members


def read_json_document(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The JSON document the still-running quickstart printed (indent 2, ends with "}")."""
    lines: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.rstrip("\n") == "}":
                done.set()
                return
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"quickstart printed no JSON within {timeout}s: {''.join(lines)}"
    assert lines and lines[-1].rstrip("\n") == "}", f"quickstart exited: {''.join(lines)}"
    return dict(json.loads("".join(lines)))


@pytest.mark.timeout(480)
def test_quickstart_runs_airflow_until_ctrl_c(tmp_path: Path) -> None:
    """The README's main command: a real Airflow runs the example DAG at the deployed version;
    re-running reuses everything; Ctrl-C stops every process quickstart started."""
    pytest.importorskip("airflow", reason="needs Apache Airflow (scripts/setup installs it)")
    pytest.importorskip("dagship.airflow.bundle", reason="needs the dagship DAG bundle")
    from dagship.airflow_api.client import AirflowClient

    home, folder = tmp_path / "home", tmp_path / "work"
    folder.mkdir()
    port, airflow_port = free_port(), free_port()
    env = {**clean_env(), "DAGSHIP_HOME": str(home)}
    args = ["quickstart", "--dir", str(folder), "--port", str(port)]
    args += ["--airflow-port", str(airflow_port), "--json"]
    stderr = (tmp_path / "quickstart.err").open("w")
    proc = subprocess.Popen(
        [*DAGSHIP, *args], env=env, cwd=folder, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    server_pid = airflow_pid = None
    try:
        started = time.monotonic()
        doc = read_json_document(proc, timeout=400)
        print(f"quickstart ready in {time.monotonic() - started:.1f}s")
        server_pid, airflow = doc["server_pid"], doc["airflow"]
        airflow_pid = airflow["pid"]
        assert doc["started_server"] and airflow["started"]
        # The foreground run records its server's pid too, where --detach does.
        assert doc["pid_file"] == str(home / "server.pid")
        assert (home / "server.pid").read_text().strip() == str(server_pid)
        assert doc["deployment"] == "local"
        assert doc["token"]
        assert airflow["dags"] == ["example_dag"]
        assert airflow["password"], "the generated admin password is reported"
        assert airflow["followed_by_server"] is True, "the server knows local's Airflow"

        # Airflow's own REST API, logged in as the reported user: the deployed version runs.
        login = {"username": airflow["username"], "password": airflow["password"]}
        with AirflowClient(airflow["url"], **login) as airflow_api:
            dag = airflow_api.dag_details("example_dag")
        assert dag["bundle_name"] == "dagship-local"
        assert dag["bundle_version"] == doc["deploy"]["dags_version"]

        # Re-running resumes: same server, same Airflow, nothing new to deploy.
        again = subprocess.run(
            [*DAGSHIP, *args, "--detach"],
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        resumed = json.loads(again.stdout)
        assert resumed["started_server"] is False
        assert resumed["airflow"]["started"] is False
        assert resumed["airflow"]["pid"] == airflow_pid
        assert resumed["deploy"]["unchanged"] is True

        tree = process_tree(proc.pid)
        assert {server_pid, airflow_pid} <= tree
        assert len(tree) > 5, "server, standalone and its scheduler, processor, api-server, …"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        assert not {pid for pid in tree if alive(pid)}
        assert not group_members(airflow_pid) and not group_members(server_pid)
        assert not (home / "airflow.pid").exists()
        assert not (home / "server.pid").exists(), "removed with the server it names"
    finally:
        stderr.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pgid in (airflow_pid, server_pid):
            if pgid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)


def test_ctrl_c_says_what_it_stops(tmp_path: Path) -> None:
    home, folder, port = tmp_path / "home", tmp_path / "work", free_port()
    folder.mkdir()
    env = {**clean_env(), "DAGSHIP_HOME": str(home)}
    args = ["quickstart", "--dir", str(folder), "--port", str(port), "--no-airflow"]
    proc = subprocess.Popen(
        [*DAGSHIP, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "press Ctrl-C" in line:
                break
        time.sleep(1.0)  # the line is printed just before it starts serving
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Stopping the dagship server…" in stderr
    assert "Stopped everything quickstart started in " in stderr
    assert not (home / "server.pid").exists()
