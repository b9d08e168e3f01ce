"""The one rule for an Airflow run by dagship (parse workers, pytest, the local Airflow, the
agent): what it keeps of the caller's environment, where Airflow writes, and how the project
is importable. parse_test and pytest_runner_test check the same through the real commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagship.environment.airflow import airflow_environment

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
