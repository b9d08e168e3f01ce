"""A deploy reaching Airflow 3.0, the oldest Airflow dagship supports, through the dagship
bundle: a real ``airflow standalone`` of Airflow 3.0 from a uv environment (as ``dagship parse``
builds it for ``airflow_version: "3.0"``), with this dagship made importable there. The other
tests of this folder run Airflow 3.3.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import dagship.local.airflow as runtime
from tests.airflow.conftest import AirflowSetup, TestAirflowClient
from tests.compat.conftest import VersionedEnvironment, dagship_link, environment_for
from tests.helpers import Cli, Server, dag_source, free_port, unique, write

pytestmark = [pytest.mark.airflow_versions, pytest.mark.timeout(900)]

# Installed without its constraints file, Airflow 3.0.6 gets libraries released after it, which
# it does not work with: its API server signs tokens that PyJWT 2.11+ refuses ("Issuer (iss)
# must be a string"), and its Execution API refuses every task start under the newest FastAPI
# and cadwyn (422, "Input should be a valid dictionary"). A real deployment installs it with
# its constraints file: these pins keep those libraries at releases of Airflow 3.0.6's time.
AIRFLOW_30_PINS = "PyJWT<2.11\nfastapi<0.117\ncadwyn<5.5\npydantic<2.12\n"


@pytest.fixture(scope="module")
def airflow30_env(
    shared_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> VersionedEnvironment:
    return environment_for(
        "3.0", shared_cache, tmp_path_factory.mktemp("env"), requirements=AIRFLOW_30_PINS
    )


@pytest.fixture(scope="module")
def airflow30(
    airflow30_env: VersionedEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowSetup]:
    root = tmp_path_factory.mktemp("airflow30")
    server = Server(root / "dagship-home").start()
    process = None
    try:
        api = server.api()
        deployment = unique("af30")
        token = api.create_token("viewer", deployment=None)
        port = free_port()
        url = runtime.airflow_url(port)
        api.create_deployment(deployment, airflow_url=url)
        home = root / "airflow-home"
        env = runtime.airflow_env(home, port, server.url, deployment, token)
        env.update(
            {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                # Airflow 3.0 reads XCom values through the REST API only with this.
                "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
                # The DAG bundle is this dagship, and nothing else of this interpreter.
                "PYTHONPATH": str(dagship_link(root)),
            }
        )
        log_file = root / "airflow.log"
        process = start_standalone(airflow30_env, env, log_file)
        process.wait_ready(timeout=300)
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
                airflow_home=home,
            )
    finally:
        if process is not None:
            process.stop()
        server.close()


def start_standalone(
    versioned: VersionedEnvironment, env: dict[str, str], log_file: Path
) -> runtime.AirflowProcess:
    """``airflow standalone`` of the environment (runtime.start_airflow runs the Airflow next
    to this interpreter); its components are started from PATH, so the environment's bin/
    comes first."""
    bin_dir = versioned.environment.python.parent
    full = {**env, "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)])}
    home = Path(full["AIRFLOW_HOME"])
    (home / "dags").mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(bin_dir / "airflow"), "standalone"],
            env=full,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    port = int(full["AIRFLOW__API__PORT"])
    return runtime.AirflowProcess(runtime.airflow_url(port), home, log_file, process)


def test_a_deploy_reaches_airflow_30_at_its_version_and_runs(
    airflow30: AirflowSetup, airflow30_env: VersionedEnvironment, tmp_path: Path
) -> None:
    setup = airflow30
    assert setup.airflow.version() == airflow30_env.version
    project = tmp_path / "project"
    write(project, "dags/alpha.py", dag_source("alpha"))
    write(project, "dags/beta.py", dag_source("beta"))
    command = ("deploy", project, "-d", setup.deployment, "--no-parse", "--wait", "--json")
    first = setup.cli(*command, "--timeout", "180").ok().json()
    assert first["wait"]["state"] == "parsed" and "alpha" in first["dags"]
    assert setup.airflow.dag("alpha")["bundle_version"] == first["dags_version"]

    # A second version: Airflow follows it, and a run executes the deployed code on a worker,
    # which materializes exactly that version of the bundle.
    write(project, "dags/alpha.py", dag_source("alpha", "# version two\n"))
    second = setup.cli(*command, "--timeout", "180").ok().json()
    assert second["dags_version"] != first["dags_version"]
    assert setup.airflow.dag("alpha")["bundle_version"] == second["dags_version"]
    run = setup.airflow.trigger("alpha")["dag_run_id"]
    deadline = time.monotonic() + 180
    while (state := setup.airflow.dag_run("alpha", run)["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"run {run} still {state}"
        time.sleep(1)
    assert state == "success", setup.log_file.read_text(errors="replace")[-4000:]
    assert setup.airflow.xcom("alpha", run, "hello") == "hello from alpha"
    assert setup.airflow.dag_run("alpha", run)["bundle_version"] == second["dags_version"]

    # A removal is live once Airflow 3.0 shows the removed file's DAG stale.
    (project / "dags" / "beta.py").unlink()
    third = setup.cli(*command, "--timeout", "180").ok().json()
    assert third["wait"]["removed_dags"] == ["beta"], third["wait"]
    assert setup.airflow.dag("beta")["is_stale"] is True
