"""airflow_settings.yaml applied by the agent's worker on each supported Airflow line (3.0 to
3.3), whose models the worker writes through: create, then update, read back by Airflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagship.agent.settings import AppliedSettings, apply_airflow_settings
from dagship.environment.airflow import airflow_environment
from tests.agent.settings_test import database, project_with
from tests.compat.conftest import VersionedEnvironment

SETTINGS = """
    airflow:
      connections:
        - conn_id: warehouse
          conn_type: postgres
          conn_host: db.example.com
          conn_password: s3cret
          conn_extra: {sslmode: require}
      pools:
        - pool_name: warehouse
          pool_slot: 4
      variables:
        - variable_name: region
          variable_value: eu-west-1
"""


def test_settings_apply_on_each_airflow_line(
    versioned: VersionedEnvironment, tmp_path: Path
) -> None:
    python = versioned.environment.python
    env = airflow_environment(tmp_path / "home", None)
    airflow = str(python.with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    project = project_with(tmp_path, SETTINGS)
    assert apply_airflow_settings(python, env, project) == AppliedSettings(1, 1, 1)
    changed = SETTINGS.replace("db.example.com", "db2").replace("eu-west-1", "us-east-1")
    apply_airflow_settings(python, env, project_with(tmp_path, changed))
    db = database(env, python)
    warehouse = db["connections"]["warehouse"]
    assert (warehouse["host"], warehouse["password"]) == ("db2", "s3cret")
    assert warehouse["extra"] == {"sslmode": "require"}
    assert db["pools"]["warehouse"][0] == 4
    assert db["variables"] == {"region": "us-east-1"}
