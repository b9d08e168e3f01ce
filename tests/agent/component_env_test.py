"""The environment of a component: the project rule, the agent's Airflow settings, the bundle."""

from __future__ import annotations

import json
from pathlib import Path

from dagship.agent.component_env import BUNDLE_SETTING, component_environment


def _env(tmp_path: Path, base: dict[str, str]) -> dict[str, str]:
    return component_environment(
        tmp_path / "airflow",
        tmp_path / "projects" / "v1",
        tmp_path / "env" / "bin",
        tmp_path / "python",
        "http://dagship:8787",
        "prod",
        "agent-token",
        base,
    )


def test_the_agents_airflow_settings_pass_through_its_database_included(tmp_path: Path) -> None:
    base = {
        "PATH": "/usr/bin",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow@db/airflow",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PLUGINS_FOLDER": "/elsewhere",
        "DAGSHIP_API_TOKEN": "secret",
    }
    env = _env(tmp_path, base)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql://airflow@db/airflow"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["DAGSHIP_API_TOKEN"] == "agent-token"
    # Where the project lives is the version's, not the agent's.
    tree = tmp_path / "projects" / "v1"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(tree / "plugins")
    assert env["PYTHONPATH"].split(":")[0] == str(tree)
    assert env["PYTHONPATH"].split(":")[-1] == str(tmp_path / "python")
    assert env["PATH"] == f"{tmp_path / 'env' / 'bin'}:/usr/bin"
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")


def test_the_dagship_bundle_is_added_unless_bundles_are_configured(tmp_path: Path) -> None:
    env = _env(tmp_path, {"AIRFLOW__API__PORT": "9000"})
    (bundle,) = json.loads(env[BUNDLE_SETTING])
    assert bundle["classpath"] == "dagship.airflow.DagshipDagBundle"
    assert bundle["kwargs"]["url"] == "http://dagship:8787"
    assert bundle["kwargs"]["deployment"] == "prod"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:9000/execution/"
    own = '[{"name": "mine", "classpath": "x.Y", "kwargs": {}}]'
    assert _env(tmp_path, {BUNDLE_SETTING: own})[BUNDLE_SETTING] == own


def test_tasks_ride_out_an_api_server_restart_unless_the_agent_says_otherwise(
    tmp_path: Path,
) -> None:
    retries = "AIRFLOW__WORKERS__EXECUTION_API_RETRIES"
    assert _env(tmp_path, {})[retries] == "10"
    assert _env(tmp_path, {retries: "3"})[retries] == "3"


def test_airflow_reads_only_changed_files_when_listing_unless_the_agent_says_otherwise(
    tmp_path: Path,
) -> None:
    setting = "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE"
    assert _env(tmp_path, {})[setting] == "dagship.airflow.discovery.might_contain_dag"
    assert _env(tmp_path, {setting: "mine.heuristic"})[setting] == "mine.heuristic"
