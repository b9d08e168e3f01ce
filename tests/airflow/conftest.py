"""A real Apache Airflow 3 (`airflow standalone`, SQLite, LocalExecutor) wired to a real
dagship server through the dagship DAG bundle; one of each per test module (they are heavy)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import dagship.local.airflow as runtime
from dagship.airflow_api.client import AirflowClient
from tests.helpers import Api, Cli, Server, free_port, unique

if not runtime.airflow_installed():
    # scripts/setup installs Airflow: in CI a missing Airflow is a broken set-up, not a skip.
    if os.environ.get("CI"):
        raise RuntimeError("Apache Airflow is not installed in the test environment")
    pytest.skip("Apache Airflow is not installed next to dagship", allow_module_level=True)


@dataclasses.dataclass
class AirflowSetup:
    server: Server
    api: Api
    cli: Cli
    deployment: str
    airflow: AirflowClient
    airflow_url: str
    log_file: Path
    airflow_home: Path


@pytest.fixture(scope="module")
def airflow_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowSetup]:
    root = tmp_path_factory.mktemp("airflow")
    server = Server(root / "dagship-home").start()
    process = None
    try:
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
        with AirflowClient(url) as client:
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
