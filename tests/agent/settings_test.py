"""airflow_settings.yaml applied to a real Airflow 3.3.2 database (one `airflow db migrate` for the
module, SQLite in a temporary AIRFLOW_HOME, a Fernet key so secrets are stored encrypted): named
entries created, then updated; entries the file does not name left alone; bad files refused
naming the file and entry, with nothing changed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagship.agent.errors import AgentError
from dagship.agent.settings import AppliedSettings, apply_airflow_settings
from dagship.environment.airflow import airflow_environment

PYTHON = Path(sys.executable)  # the test environment has Apache Airflow 3.3.2
# The Airflow database as Airflow's own models read it back (passwords and extras decrypted).
READ_BACK = """
import json
from airflow.models import Connection, Pool, Variable
from airflow.utils.session import create_session
with create_session() as s:
    print(json.dumps({
        "connections": {c.conn_id: {"conn_type": c.conn_type, "host": c.host, "schema": c.schema,
            "login": c.login, "password": c.password, "port": c.port, "extra": c.extra_dejson,
            "encrypted": c.is_encrypted} for c in s.query(Connection)},
        "pools": {p.pool: [p.slots, p.description] for p in s.query(Pool)},
        "variables": {v.key: v.val for v in s.query(Variable)},
    }))
"""
SETTINGS = """
    # The blank entries `astro dev init` writes are skipped.
    airflow:
      connections:
        - conn_id: warehouse
          conn_type: postgres
          conn_host: db.example.com
          conn_schema: analytics
          conn_login: airflow
          conn_password: s3cret
          conn_port: 5432
          conn_extra:
            sslmode: require
        - conn_id: api
          conn_uri: http://user:pw@api.example.com:8080/v1
        - conn_id:
          conn_type:
          conn_host:
      pools:
        - pool_name: warehouse
          pool_slot: 4
          pool_description: queries on the warehouse
        - pool_name:
          pool_slot:
      variables:
        - variable_name: region
          variable_value: eu-west-1
        - variable_name: limits
          variable_value: {rows: 10}
        - variable_name: retries
          variable_value: 3
        - variable_name:
          variable_value:
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from cryptography.fernet import Fernet

    home = tmp_path_factory.mktemp("airflow-home")
    env = airflow_environment(home, None)
    env["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()
    airflow = PYTHON.parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    yield env


def database(env: dict[str, str], python: Path = PYTHON) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", READ_BACK], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def project_with(tmp_path: Path, text: str) -> Path:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "airflow_settings.yaml").write_text(textwrap.dedent(text).lstrip())
    return project


def test_settings_are_created_then_updated_and_unnamed_entries_kept(
    tmp_path: Path, airflow_env: dict[str, str]
) -> None:
    # An operator's own entries, made in Airflow, not in the file.
    mine = "airflow:\n  variables:\n    - variable_name: mine\n      variable_value: 1\n"
    apply_airflow_settings(PYTHON, airflow_env, project_with(tmp_path, mine))

    applied = apply_airflow_settings(PYTHON, airflow_env, project_with(tmp_path, SETTINGS))
    assert applied == AppliedSettings(
        connections=2,
        pools=1,
        variables=3,
        skipped=(
            "airflow.connections[2]: no name",
            "airflow.pools[1]: no name",
            "airflow.variables[3]: no name",
        ),
    )
    db = database(airflow_env)
    assert db["connections"]["warehouse"] == {
        "conn_type": "postgres",
        "host": "db.example.com",
        "schema": "analytics",
        "login": "airflow",
        "password": "s3cret",
        "port": 5432,
        "extra": {"sslmode": "require"},
        "encrypted": True,
    }
    api = db["connections"]["api"]
    assert (api["conn_type"], api["host"], api["port"], api["login"]) == (
        "http",
        "api.example.com",
        8080,
        "user",
    )
    assert db["pools"]["warehouse"] == [4, "queries on the warehouse"]
    assert db["pools"]["default_pool"][0] == 128
    assert db["variables"] == {
        "mine": "1",
        "region": "eu-west-1",
        "limits": '{"rows": 10}',
        "retries": "3",
    }

    # The file changes: what it names is updated; everything else stays as it was.
    changed = (
        SETTINGS.replace("db.example.com", "db2.example.com")
        .replace("conn_password: s3cret", "conn_password:")
        .replace("pool_slot: 4", "pool_slot: 8")
        .replace("eu-west-1", "us-east-1")
    )
    apply_airflow_settings(PYTHON, airflow_env, project_with(tmp_path, changed))
    db = database(airflow_env)
    assert db["connections"]["warehouse"]["host"] == "db2.example.com"
    assert db["connections"]["warehouse"]["password"] is None  # replaced as a whole
    assert db["pools"]["warehouse"] == [8, "queries on the warehouse"]
    assert db["variables"]["region"] == "us-east-1" and db["variables"]["mine"] == "1"
    assert set(db["connections"]) == {"warehouse", "api"}


def test_an_entry_airflow_refuses_changes_nothing(
    tmp_path: Path, airflow_env: dict[str, str]
) -> None:
    text = """
        airflow:
          variables:
            - variable_name: first_of_a_failed_file
              variable_value: x
          connections:
            - conn_id: broken
              conn_type: http
              conn_extra: "not json"
    """
    with pytest.raises(AgentError) as caught:
        apply_airflow_settings(PYTHON, airflow_env, project_with(tmp_path, text))
    message = str(caught.value)
    assert "could not apply airflow_settings.yaml" in message and "nothing was changed" in message
    assert "non-JSON in `extra` field for connection 'broken'" in message
    db = database(airflow_env)
    assert "first_of_a_failed_file" not in db["variables"] and "broken" not in db["connections"]


def test_without_the_file_nothing_runs(tmp_path: Path) -> None:
    missing_python = tmp_path / "no-python"
    assert apply_airflow_settings(missing_python, {}, tmp_path) == AppliedSettings()


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("airflow:\n  connections: [\n", ["is not valid YAML"]),
        ("astro:\n  pools: []\n", ["the file: unknown key astro", "the keys are airflow"]),
        ("airflow:\n  pool:\n    - pool_name: x\n", ["airflow: unknown key pool"]),
        ("airflow:\n  pools: {a: 1}\n", ["airflow.pools must be a list"]),
        (
            "airflow:\n  connections:\n    - conn_id: db\n      conn_hots: x\n",
            ["airflow.connections[0]: unknown key conn_hots", "conn_host"],
        ),
        (
            "airflow:\n  pools:\n    - pool_name: p\n      pool_slot: many\n",
            ["airflow.pools[0] (p): pool_slot must be a whole number"],
        ),
        (
            "airflow:\n  connections:\n    - conn_id: [a]\n",
            ["airflow.connections[0]: conn_id must be a single value"],
        ),
        (
            "airflow:\n  variables:\n    - {variable_name: a, variable_value: 1}\n"
            "    - {variable_name: a, variable_value: 2}\n",
            ["airflow.variables[1]: a is named twice"],
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_entry(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    project = project_with(tmp_path, text)
    with pytest.raises(AgentError) as caught:
        apply_airflow_settings(tmp_path / "no-python", {}, project)
    assert str(project / "airflow_settings.yaml") in str(caught.value)
    for needle in needles:
        assert needle in str(caught.value)


def test_entries_the_astro_cli_skips_are_reported(tmp_path: Path) -> None:
    text = """
        airflow:
          connections:
            - conn_id: typeless
              conn_host: x
          pools:
            - pool_name: slotless
          variables:
            - variable_name: valueless
    """
    applied = apply_airflow_settings(tmp_path / "no-python", {}, project_with(tmp_path, text))
    assert applied.skipped == (
        "airflow.connections[0] (typeless): neither conn_type nor conn_uri",
        "airflow.pools[0] (slotless): no pool_slot",
        "airflow.variables[0] (valueless): no variable_value",
    )
