"""`dagship quickstart --detach` end to end in a temp folder with a temp DAGSHIP_HOME."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import Cli, create_pg_database, drop_pg_database, free_port, write


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
            "quickstart", "--dir", folder, "--port", str(port), "--detach", env=env
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
        # The deployed project is the scaffolded one: deploying it again changes nothing.
        again = client("deploy", folder, "--deployment", "local", "--json").ok().json()
        assert again["unchanged"] is True


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
            env={"DAGSHIP_HOME": str(home)},
        ).ok()
        assert sorted(p.name for p in (folder / "dags").iterdir()) == ["my_dag.py"]
        token = (home / "admin-token").read_text().strip()
        client = Cli(f"http://127.0.0.1:{port}", token)
        out = client("deploy", folder, "--deployment", "local", "--json").ok().json()
        assert out["unchanged"] is True
