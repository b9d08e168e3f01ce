"""A real dagship server and a real ``dagship agent run`` subprocess running Airflow 3.3.2
standalone from the deployment's project versions; one of each per test module (Airflow is
heavy: each start costs about a minute of CI)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from dagship.agent.state import RecordedProcess, kill_leftovers
from tests.airflow.conftest import TestAirflowClient
from tests.helpers import Api, Cli, Server, clean_env, free_port, unique, write

AIRFLOW_FOR_TESTS = {
    # Tests only: the REST API needs no token, so the dagship server needs none.
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "0",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "0",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
    "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
}

DAG = """\
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="uses_both", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def uses_both():
    @task
    def run() -> str:
        import cowsay  # only requirements.txt brings it

        from include.helpers import helper

        said = cowsay.get_output_string("cow", "moo")
        return helper() + (" moo" if "| moo |" in said else " (no cow)")

    run()


uses_both()
"""
PLUGIN = """\
from airflow.plugins_manager import AirflowPlugin


class AgentTestPlugin(AirflowPlugin):
    name = "agent_test_plugin"
"""


def write_project(root: Path, helper: str, requirements: str = "cowsay\n") -> Path:
    """The test project: a DAG whose task imports include/helpers.py and cowsay (brought by
    requirements.txt only), and a plugin."""
    write(root, "dags/uses_both.py", DAG)
    write(root, "include/__init__.py", "")
    write(root, "include/helpers.py", f"def helper() -> str:\n    return {helper!r}\n")
    write(root, "plugins/agent_test_plugin.py", PLUGIN)
    write(root, "requirements.txt", requirements)
    write(root, "dagship.yaml", "airflow_version: 3.3.2\n")
    return root


@dataclasses.dataclass
class AgentProcess:
    """``dagship agent run`` as a subprocess, as a systemd unit would run it."""

    deployment: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    # More arguments of ``dagship agent run``, e.g. ``("--component", "celery-worker")``.
    args: tuple[str, ...] = ()

    @property
    def log_file(self) -> Path:
        return self.home.parent / f"agent-{self.starts}.out"

    def start(self) -> None:
        self.starts += 1
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dagship",
                    "agent",
                    "run",
                    "-d",
                    self.deployment,
                    "--home",
                    str(self.home),
                    *self.args,
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            began = time.monotonic()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            print(f"\nagent in {self.home} stopped {time.monotonic() - began:.1f}s after SIGTERM")
        with contextlib.suppress(FileNotFoundError, ValueError, TypeError):
            kill_leftovers(
                [RecordedProcess(**p) for p in self.state().get("processes", [])], timeout=10
            )

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "agent-state.json").read_text()))

    def log(self) -> str:
        """What every run of the agent logged (logs/agent.log)."""
        try:
            return (self.home / "logs" / "agent.log").read_text()
        except FileNotFoundError:
            return ""

    def standalone_groups(self) -> set[int]:
        """Process groups of ``airflow standalone`` running with this agent's Airflow home."""
        groups = set()
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                cmdline = proc.info["cmdline"] or []
                if (
                    "standalone" in cmdline
                    and any("airflow" in part for part in cmdline)
                    and proc.environ().get("AIRFLOW_HOME") == str(self.home / "airflow")
                ):
                    groups.add(os.getpgid(proc.pid))
        return groups


@dataclasses.dataclass
class AgentSetup:
    server: Server
    api: Api
    cli: Cli
    deployment: str
    agent: AgentProcess
    airflow: TestAirflowClient
    project: Path


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def agent_env(
    server: Server, token: str, port: int, cache: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = clean_env()
    env.update(AIRFLOW_FOR_TESTS)
    env.update(
        {
            "DAGSHIP_URL": server.url,
            "DAGSHIP_API_TOKEN": token,
            "DAGSHIP_CACHE_DIR": str(cache),
            "AIRFLOW__API__PORT": str(port),
        }
    )
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def agent_setup(
    tmp_path_factory: pytest.TempPathFactory, shared_cache: Path
) -> Iterator[AgentSetup]:
    root = tmp_path_factory.mktemp("agent")
    server = Server(root / "dagship-home").start()
    agent = None
    try:
        api = server.api()
        deployment = unique("ag")
        port = free_port()
        api.create_deployment(deployment, airflow_url=f"http://127.0.0.1:{port}")
        # A viewer token bound to the deployment: enough for the agent and its DAG bundle.
        token = api.create_token("viewer", deployment=deployment)
        env = agent_env(server, token, port, shared_cache)
        agent = AgentProcess(deployment, root / "agent-home", env)
        agent.start()
        # As an operator would check with `dagship deployment inspect`: the agent is there.
        wait_until(
            lambda: api.get(f"/deployments/{deployment}/agents").json(), 60, "the agent's report"
        )
        # A loaded CI machine may take its time answering.
        with TestAirflowClient(f"http://127.0.0.1:{port}", timeout=60) as airflow:
            yield AgentSetup(
                server=server,
                api=api,
                cli=Cli(server.url, server.admin_token),
                deployment=deployment,
                agent=agent,
                airflow=airflow,
                project=root / "project",
            )
    finally:
        if agent is not None:
            agent.stop()
        server.close()
