"""dagship on each Airflow 3 minor version it supports (3.0, 3.1, 3.2, 3.3, the newest patch of
each, in uv environments as ``dagship parse`` builds them): the parse check, ``dagship test``
and the DAG bundle's own tests.

The tests of one version share its environment (conftest.py); each takes seconds once the
environment is built, the bundle's tests about a minute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import VersionedEnvironment, dagship_link
from tests.helpers import Cli, clean_env, write

pytestmark = [pytest.mark.airflow_versions, pytest.mark.timeout(900)]

REPOSITORY = Path(__file__).resolve().parents[2]
GOOD = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from include.naming import task_name

with DAG("good", schedule=None):
    EmptyOperator(task_id=task_name(1)) >> EmptyOperator(task_id=task_name(2))
"""
OLD_IMPORTS = """
import pendulum
from airflow.decorators import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1))
def old_imports():
    @task
    def hello():
        return 1

    hello()


old_imports()
"""
EXAMPLE_PLUGINS = """
from airflow.example_dags.plugins.workday import WorkdayTimetablePlugin
"""
# The bundle's tests that exercise dagship's own machinery under load (an atomic swap read
# while it happens, a listener and a server that come and go) and depend on no Airflow API:
# they run with the test interpreter's Airflow only, where they take most of a minute each.
SLOW_AND_VERSION_FREE = (
    "test_one_changed_file_downloads_one_blob_and_swaps_atomically",
    "test_listener_waits_out_a_stopped_server_and_hears_the_next_deploy",
    "test_server_down_keeps_the_tree_and_recovers",
)


def parse(project: Path, versioned: VersionedEnvironment, *args: str) -> Any:
    env = {"DAGSHIP_CACHE_DIR": str(versioned.cache), "DAGSHIP_PARSE_SERVER_IDLE": "0"}
    return Cli(None, None)("parse", project, *args, env=env)


def example_dag(versioned: VersionedEnvironment, name: str) -> str:
    """An example DAG file from the environment's own Airflow."""
    site = next(versioned.environment.location.glob("lib/python3.*/site-packages"))  # type: ignore[union-attr]
    return (site / "airflow" / "example_dags" / name).read_text()


def test_parse(versioned: VersionedEnvironment, tmp_path: Path) -> None:
    project = versioned.project(
        tmp_path / "project",
        {
            "dags/good.py": GOOD,
            "include/__init__.py": "",
            "include/naming.py": "def task_name(n):\n    return f'task_{n}'\n",
            "dags/broken.py": "from airflow.sdk import DAG\nimport no_such_module_here\n",
            "dags/old_imports.py": OLD_IMPORTS,
            "dags/workday.py": example_dag(versioned, "example_workday_timetable.py"),
        },
    )
    report = parse(project, versioned, "--json").json()
    assert report["airflow_version"] == versioned.version
    assert str(versioned.environment.python) == report["python"]
    files = {f["path"]: f for f in report["files"]}
    assert files["dags/good.py"]["dags"] == [{"dag_id": "good", "tasks": 2}]
    assert files["dags/good.py"]["errors"] == []
    (broken,) = files["dags/broken.py"]["errors"]
    assert broken["kind"] == "import" and broken["line"] == 2
    assert "No module named 'no_such_module_here'" in broken["message"]
    # Airflow imports it, then its DAG processor fails to serialize it: so does the parse.
    (workday,) = files["dags/workday.py"]["errors"]
    assert workday["kind"] == "serialization" and files["dags/workday.py"]["dags"] == []
    assert "AfterWorkdayTimetable' is not registered" in workday["message"]
    old = files["dags/old_imports.py"]
    assert old["errors"] == [] and old["dags"] == [{"dag_id": "old_imports", "tasks": 1}]
    if versioned.line != "3.0":  # Airflow 3.0 did not deprecate airflow.decorators yet
        assert {w["category"] for w in old["warnings"]} == {"DeprecatedImportWarning"}
        assert any("airflow.sdk.dag" in w["message"] for w in old["warnings"])

    # The plugin that registers the timetable makes the DAG serialize.
    write(project, "plugins/example_plugins.py", EXAMPLE_PLUGINS)
    fixed = parse(project, versioned, "--json").json()
    files = {f["path"]: f for f in fixed["files"]}
    assert files["dags/workday.py"]["errors"] == []
    assert files["dags/workday.py"]["dags"] == [{"dag_id": "example_workday_timetable", "tasks": 1}]
    assert fixed["error_count"] == 1  # broken.py


def test_dagship_test(versioned: VersionedEnvironment, tmp_path: Path) -> None:
    project = tmp_path / "project"
    Cli(None, None)("init", project).ok()
    versioned.project(
        project,
        {
            "tests/test_helpers.py": (
                "from include.greetings import greeting\n\n\n"
                "def test_greeting():\n    assert greeting('dagship')\n"
            )
        },
    )
    env = {"DAGSHIP_CACHE_DIR": str(versioned.cache)}
    result = Cli(None, None)("test", project, env=env).ok()
    assert re.search(r"\b4 passed\b", result.out), result.out


def test_dag_bundle(versioned: VersionedEnvironment, tmp_path: Path) -> None:
    """tests/airflow/bundle_test.py, run by the environment's interpreter with its Airflow
    (the dagship server of those tests runs with this interpreter)."""
    python = str(versioned.environment.python)
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(dagship_link(tmp_path)), str(REPOSITORY)])
    env["DAGSHIP_TEST_SERVER_PYTHON"] = sys.executable
    command = [
        python,
        "-m",
        "pytest",
        "tests/airflow/bundle_test.py",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    command += ["-W", "ignore::pytest.PytestConfigWarning", "-o", "addopts="]
    command += ["-k", " and ".join(f"not {name}" for name in SLOW_AND_VERSION_FREE)]
    done = subprocess.run(
        command,
        cwd=REPOSITORY,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    summary = re.search(r"(\d+) passed", output)
    assert summary and int(summary[1]) >= 25, output[-2000:]
    assert "skipped" not in output.splitlines()[-1], output[-2000:]
