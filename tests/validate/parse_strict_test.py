"""``dagship parse`` is as strict as Airflow's DAG processor: after importing a file it
serializes each DAG, with the project's plugins loaded, and reports what Airflow rejects.

The reference is a real DAG processor (``airflow dag-processor --num-runs 1``, Airflow 3.3.2 of
the test interpreter) over the same files, its import errors read from its metadata database.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_env
from tests.validate.conftest import ParseCli, by_path, write_files
from tests.validate.parse_test import AIRFLOW_EXAMPLES

pytestmark = pytest.mark.timeout(600)

NEED_PLUGINS = {
    "dags/example_custom_weight.py": "Unknown priority strategy",
    "dags/example_workday_timetable.py": "AfterWorkdayTimetable' is not registered",
}
# A plugin file of the project that registers the example DAGs' priority weight strategy and
# timetable: Airflow finds AirflowPlugin subclasses among a plugin module's names.
EXAMPLE_PLUGINS = """
    from airflow.example_dags.plugins.decreasing_priority_weight_strategy import (
        DecreasingPriorityWeightStrategyPlugin,
    )
    from airflow.example_dags.plugins.workday import WorkdayTimetablePlugin
"""


def copy_examples(project: Path, *names: str) -> Path:
    """Airflow's example DAG files (``names``, default all) as the project's dags/."""
    dags = project / "dags"
    if names:
        dags.mkdir(parents=True)
        for name in names:
            shutil.copy(AIRFLOW_EXAMPLES / name, dags / name)
    else:
        shutil.copytree(AIRFLOW_EXAMPLES, dags, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_dags_airflow_cannot_serialize_fail_without_their_plugin(
    tmp_path: Path, parse_cli: ParseCli
) -> None:
    project = copy_examples(
        tmp_path / "project", "example_custom_weight.py", "example_workday_timetable.py"
    )
    report = parse_cli(project, "--local", "--json").json()
    files = by_path(report)
    assert report["ok"] is False and report["error_count"] == 2
    for path, needle in NEED_PLUGINS.items():
        (error,) = files[path]["errors"]
        assert error["kind"] == "serialization"
        assert needle in error["message"] and "plugin in plugins/" in error["message"]
        # Airflow would not register the DAG: neither does the report.
        assert files[path]["dags"] == []

    human = parse_cli(project, "--local")
    assert human.code == 1
    assert "Error in dags/example_workday_timetable.py (serialization): DAG " in human.out
    assert "Failed to serialize DAG 'example_custom_weight'" in human.out

    write_files(project, {"plugins/example_plugins.py": EXAMPLE_PLUGINS})
    fixed = parse_cli(project, "--local", "--json").ok().json()
    assert {f["path"]: [d["dag_id"] for d in f["dags"]] for f in fixed["files"]} == {
        "dags/example_custom_weight.py": ["example_custom_weight"],
        "dags/example_workday_timetable.py": ["example_workday_timetable"],
    }


def test_a_broken_plugin_is_named_in_the_error(tmp_path: Path, parse_cli: ParseCli) -> None:
    project = copy_examples(tmp_path / "project", "example_workday_timetable.py")
    write_files(
        project,
        {"plugins/example_plugins.py": EXAMPLE_PLUGINS + "    import no_such_plugin_module\n"},
    )
    report = parse_cli(project, "--local", "--json").json()
    (error,) = by_path(report)["dags/example_workday_timetable.py"]["errors"]
    assert "these plugins failed to load: plugins/example_plugins.py" in error["message"]


def test_errors_are_the_dag_processors_on_airflows_example_dags(
    tmp_path: Path, parse_cli: ParseCli
) -> None:
    project = copy_examples(tmp_path / "project")
    ours = parse_cli(project, "--local", "--json").json()
    in_error = {f["path"].removeprefix("dags/") for f in ours["files"] if f["errors"]}
    airflow = _dag_processor_import_errors(project, tmp_path / "airflow-home")
    assert set(NEED_PLUGINS) <= {f"dags/{path}" for path in airflow}
    assert in_error == set(airflow), (in_error, airflow)
    # And the DAGs Airflow registered are the ones the parse reports.
    registered = _dag_ids(tmp_path / "airflow-home")
    assert sorted(d["dag_id"] for f in ours["files"] for d in f["dags"]) == registered


def _airflow_env(project: Path, home: Path) -> dict[str, str]:
    env = clean_env()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "2",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        }
    )
    return env


def _dag_processor_import_errors(project: Path, home: Path) -> dict[str, str]:
    """Run Airflow's DAG processor once over ``project``'s dags/; its import errors by file
    (relative to dags/), read from its metadata database."""
    env = _airflow_env(project, home)
    airflow = str(Path(sys.executable).with_name("airflow"))
    for command in (["db", "migrate"], ["dag-processor", "--num-runs", "1"]):
        done = subprocess.run(
            [airflow, *command],
            env=env,
            cwd=home.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=480,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _query(home, "SELECT filename, stacktrace FROM import_error")
    return {str(filename): str(stack) for filename, stack in rows}


def _dag_ids(home: Path) -> list[str]:
    return sorted(str(row[0]) for row in _query(home, "SELECT DISTINCT dag_id FROM serialized_dag"))


def _query(home: Path, sql: str) -> list[Any]:
    with sqlite3.connect(home / "airflow.db") as db:
        return list(db.execute(sql))
