"""The one rule for an Airflow run by dagship (parse workers, pytest, the local Airflow, the
agent): what it keeps of the caller's environment, where Airflow writes, and how the project
is importable. parse_test and pytest_runner_test check the same through the real commands; the
last test runs a real Airflow 3.3.2 (an API server and a LocalExecutor task process) with it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dagship.environment.airflow import airflow_environment
from tests.helpers import free_port
from tests.validate.conftest import write_files

USERS_OWN = {
    "AIRFLOW_HOME": "/home/me/airflow",
    "AIRFLOW_CONFIG": "/home/me/airflow/airflow.cfg",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://prod-db/airflow",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /secrets/prod-db",
    "VIRTUAL_ENV": "/home/me/.venv",
    "PYTHONHOME": "/usr",
}
PASSED_THROUGH = {
    "AIRFLOW__CORE__PARALLELISM": "7",
    "AIRFLOW_VAR_REGION": "eu",
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://warehouse",
    "MY_SETTING": "x",
    "PATH": "/usr/bin",
}


def test_a_project_runs_from_its_own_home_and_is_importable(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    base = {**USERS_OWN, **PASSED_THROUGH, "PYTHONPATH": os.pathsep.join(["/mine", "", "/more"])}
    env = airflow_environment(home, project, base)
    for key in ("AIRFLOW_CONFIG", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", "VIRTUAL_ENV"):
        assert key not in env
    assert "PYTHONHOME" not in env
    assert {key: env[key] for key in PASSED_THROUGH} == PASSED_THROUGH
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] == str(home / "dag_bundles")
    assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == str(home / "logs")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(project / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(project / "plugins")
    paths = [str(project), str(project / "dags"), str(project / "plugins"), "/mine", "/more"]
    assert env["PYTHONPATH"].split(os.pathsep) == paths


def test_without_a_project_the_code_comes_from_a_bundle(tmp_path: Path) -> None:
    env = airflow_environment(tmp_path, None, {**USERS_OWN, "PYTHONPATH": "/mine"})
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert "AIRFLOW__CORE__PLUGINS_FOLDER" not in env
    assert env["PYTHONPATH"] == "/mine"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"


def test_the_callers_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONFIG", "/home/me/airflow.cfg")
    monkeypatch.setenv("MY_SETTING", "x")
    env = airflow_environment(tmp_path)
    assert env["MY_SETTING"] == "x" and "AIRFLOW_CONFIG" not in env


INCLUDE_DAG = """
    import os

    from airflow.sdk import dag, task
    from include.helpers import helper  # at parse time, in the DAG processor

    @dag(schedule=None)
    def uses_include():
        @task
        def run():
            from include.helpers import helper as in_task  # in the task's own process
            from my_plugin import MARK

            with open(os.environ["RESULT_FILE"], "w") as out:
                out.write(f"{helper()} {in_task()} {MARK} {os.getpid()}")

        run()

    uses_include()
"""
PLUGIN = """
    from airflow.plugins_manager import AirflowPlugin

    MARK = "from-plugins"

    class ProjectPlugin(AirflowPlugin):
        name = "project_plugin"
"""


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The project's Airflow (3.3.2, this interpreter's) with a migrated SQLite database and an
    API server: a task run by the LocalExecutor reports to it from its own process."""
    project = write_files(
        tmp_path / "project",
        {
            "dags/uses_include.py": INCLUDE_DAG,
            "include/helpers.py": "def helper():\n    return 42\n",
            "plugins/my_plugin.py": PLUGIN,
        },
    )
    port = free_port()
    env = airflow_environment(tmp_path / "home", project)
    env.update(
        RESULT_FILE=str(tmp_path / "result"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
        AIRFLOW__API__PORT=str(port),
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    with (tmp_path / "api-server.log").open("w") as log:
        server = subprocess.Popen(
            [AIRFLOW, "api-server", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers in its own process group
        )
    try:
        wait_healthy(f"http://localhost:{port}/api/v2/monitor/health", server)
        yield env
    finally:
        stop_group(server)


AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"Airflow's API server did not start (exit code {server.poll()})")


def stop_group(server: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(wait)
            return


@pytest.mark.timeout(600)  # two tries of `airflow dags test`, each stopped after 200 s
def test_include_and_plugins_reach_dags_tasks_and_airflow(
    tmp_path: Path, api_server: dict[str, str]
) -> None:
    env = api_server
    plugins = subprocess.run(
        [AIRFLOW, "plugins", "-o", "json"], env=env, capture_output=True, text=True, check=True
    )
    listed = json.loads(plugins.stdout)
    assert [(p["name"], p["source"]) for p in listed] == [
        ("project_plugin", "$PLUGINS_FOLDER/my_plugin.py")
    ]
    # The LocalExecutor runs the task in a process of its own, which reports to the API server.
    run, output = dags_test_with_executor(env, tmp_path / "api-server.log")
    assert run.returncode == 0, output[-5000:]
    helper, in_task, mark, pid = (tmp_path / "result").read_text().split()
    assert (helper, in_task, mark) == ("42", "42", "from-plugins")
    assert int(pid) != run.pid  # not in the command's process: a task process of its own


def dags_test_with_executor(
    env: dict[str, str], server_log: Path
) -> tuple[subprocess.Popen[str], str]:
    """`airflow dags test --use-executor uses_include`, and what it printed.

    It takes ~10 s here, but one CI run of many hung until the test's timeout: the task stayed
    queued, in Airflow's own loop (its LocalExecutor forks its workers). A run that does not
    finish in 200 s is stopped with its workers, its output and the API server's log are given
    as a warning, and it is tried once more; a second hang fails the test with both logs.
    """
    hung = ""
    for attempt in (1, 2):
        run = subprocess.Popen(
            [AIRFLOW, "dags", "test", "--use-executor", "uses_include"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # with its executor's workers, stopped as one group
        )
        try:
            output, _ = run.communicate(timeout=200)
            return run, output
        except subprocess.TimeoutExpired:
            stop_group(run)
            output, _ = run.communicate()
            hung = (
                f"`airflow dags test` (try {attempt}) did not finish in 200 s:\n"
                f"{output[-6000:]}\nAPI server's log:\n{server_log.read_text()[-4000:]}"
            )
            if attempt == 1:
                warnings.warn(hung, stacklevel=1)
    raise AssertionError(hung)
