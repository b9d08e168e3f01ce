"""`dagship migrate-check [PATH] [--json]`: the table for people, JSON for scripts, exit 1 when
the project needs a change for Airflow 3; and the Airflow 2 refusal of `dagship parse` points
at it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Cli, write

cli = Cli(None, None)

AIRFLOW2_DAG = """\
from datetime import datetime

from airflow import DAG
from airflow.decorators import task
from airflow.operators.dummy_operator import DummyOperator

with DAG("old", schedule_interval="@daily", start_date=datetime(2024, 1, 1)):
    DummyOperator(task_id="start")
"""

AIRFLOW3_DAG = """\
from datetime import datetime

from airflow.sdk import DAG, task

with DAG("new", schedule="@daily", start_date=datetime(2026, 1, 1)):
    task(lambda: 1, task_id="one")()
"""


def airflow2_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    write(project, "Dockerfile", "FROM quay.io/astronomer/astro-runtime:12.8.0\n")
    write(project, "dags/old.py", AIRFLOW2_DAG)
    return project


def test_the_table_lists_each_change_and_exits_1(tmp_path: Path) -> None:
    result = cli("migrate-check", airflow2_project(tmp_path))
    assert result.code == 1, result.out + result.err
    lines = result.out.splitlines()
    assert any(
        line.startswith("dags/old.py:5 ")
        and "`airflow.operators.dummy_operator.DummyOperator` was removed in Airflow 3: use "
        "`airflow.providers.standard.operators.empty.EmptyOperator`"
        in line
        and line.rstrip().endswith("needed")
        for line in lines
    ), result.out
    assert any(
        line.startswith("dags/old.py:4 ") and line.rstrip().endswith("suggested") for line in lines
    )
    assert any("dags/old.py:7 " in line and "use `schedule=`" in line for line in lines)
    assert "2 changes needed for Airflow 3, 1 suggested, in 1 file (1 file read)." in result.out


def test_json_lists_the_findings(tmp_path: Path) -> None:
    project = airflow2_project(tmp_path)
    result = cli("migrate-check", project, "--json")
    assert result.code == 1
    report = result.json()
    assert (report["ok"], report["needed"], report["suggested"], report["files"]) == (
        False,
        2,
        1,
        1,
    )
    assert report["project"] == str(project.resolve())
    assert report["findings"][0] == {
        "path": "dags/old.py",
        "line": 4,
        "kind": "import",
        "found": "airflow.decorators.task",
        "replacement": "airflow.sdk.task",
        "required": False,
        "message": "`airflow.decorators.task` is deprecated in Airflow 3: use `airflow.sdk.task`",
    }


def test_a_clean_airflow_3_project_exits_0(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "dags/new.py", AIRFLOW3_DAG)
    result = cli("migrate-check", project).ok()
    assert result.out.strip() == "No change needed for Airflow 3 (1 file read)."
    assert cli("migrate-check", project, "--json").ok().json()["findings"] == []


def test_deprecated_uses_alone_exit_0(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "dags/new.py", AIRFLOW3_DAG)
    write(project, "dags/deprecated.py", "from airflow.decorators import dag\n")
    result = cli("migrate-check", project).ok()
    assert "No change needed for Airflow 3; 1 deprecated use to update" in result.out


def test_not_a_project(tmp_path: Path) -> None:
    cli("migrate-check", tmp_path).failed("no dags/ folder")


def test_parse_refuses_an_airflow_2_project_and_names_migrate_check(tmp_path: Path) -> None:
    cli("parse", airflow2_project(tmp_path)).failed("Airflow 2", "dagship migrate-check")
