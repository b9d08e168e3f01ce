"""A real Apache Airflow 3 (`airflow standalone`, SQLite, LocalExecutor) wired to a real
dagship server through the dagship DAG bundle; one of each per test module (they are heavy).

The dagship server runs on SQLite, or on a fresh PostgreSQL database where the test module
sets ``DAGSHIP_BACKEND = "postgresql"`` (to run a second server process on it)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import dagship.local.airflow as runtime
from dagship.airflow_api.client import JSON, AirflowClient
from tests.helpers import Api, Cli, Server, free_port, unique

if not runtime.airflow_installed():
    # scripts/setup installs Airflow: in CI a missing Airflow is a broken set-up, not a skip.
    if os.environ.get("CI"):
        raise RuntimeError("Apache Airflow is not installed in the test environment")
    pytest.skip("Apache Airflow is not installed next to dagship", allow_module_level=True)


def _q(value: str) -> str:
    return quote(value, safe="")


class TestAirflowClient(AirflowClient):
    """dagship's Airflow client plus the calls only the tests make: Airflow's version, read a
    DAG and its source, trigger runs and read their tasks and XComs."""

    __test__ = False  # not a pytest test class

    def version(self) -> str:
        return str(self._json("GET", "/api/v2/version")["version"])

    def dag(self, dag_id: str) -> JSON:
        return self._json("GET", f"/api/v2/dags/{_q(dag_id)}")

    def dag_source(self, dag_id: str) -> str:
        """The source code of the DAG's latest version."""
        return str(self._json("GET", f"/api/v2/dagSources/{_q(dag_id)}")["content"])

    def trigger(self, dag_id: str, conf: JSON | None = None) -> JSON:
        body = {"logical_date": None, "conf": conf or {}}
        return self._json("POST", f"/api/v2/dags/{_q(dag_id)}/dagRuns", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        return self._json("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances"
        return list(self._pages(path, "task_instances", {}))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}"
            f"/taskInstances/{_q(task_id)}/xcomEntries/{_q(key)}"
        )
        return self._json("GET", path, params={"deserialize": True})["value"]


@dataclasses.dataclass
class AirflowSetup:
    server: Server
    api: Api
    cli: Cli
    deployment: str
    airflow: TestAirflowClient
    airflow_url: str
    log_file: Path
    airflow_home: Path


@pytest.fixture(scope="module")
def airflow_setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowSetup]:
    root = tmp_path_factory.mktemp("airflow")
    server = Server(root / "dagship-home", getattr(request.module, "DAGSHIP_BACKEND", "sqlite"))
    process = None
    try:
        server.start()
        api = server.api()
        deployment = unique("af")
        token = api.create_token("viewer", deployment=None)
        port = free_port()
        url = runtime.airflow_url(port)
        api.create_deployment(deployment, airflow_url=url)
        airflow_home = root / "airflow-home"
        env = runtime.airflow_env(airflow_home, port, server.url, deployment, token)
        env.update(
            {
                # Tests only: the REST API needs no token, so the dagship server needs none.
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            }
        )
        log_file = root / "airflow.log"
        process = runtime.start_airflow(env, log_file)
        process.wait_ready(timeout=240)
        # A loaded machine can keep Airflow's API busy past the client's 10 s default.
        with TestAirflowClient(url, timeout=60) as client:
            yield AirflowSetup(
                server=server,
                api=api,
                cli=Cli(server.url, server.admin_token),
                deployment=deployment,
                airflow=client,
                airflow_url=url,
                log_file=log_file,
                airflow_home=airflow_home,
            )
    finally:
        if process is not None:
            process.stop()
        server.close()
