"""`dagship promote --wait` against a real Airflow 3: the target's Airflow parses exactly the
source's DAG version, and import errors in a promoted version fail the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.airflow.conftest import AirflowSetup
from tests.helpers import dag_source, unique, write

pytestmark = pytest.mark.timeout(420)


def test_promote_wait_reaches_the_targets_airflow(
    airflow_setup: AirflowSetup, tmp_path: Path
) -> None:
    setup = airflow_setup
    prod = setup.deployment  # the deployment this Airflow runs
    dev = unique("dev")
    setup.api.create_deployment(dev)  # no Airflow of its own
    # DAGs only: this Airflow is not run by `dagship agent`, so a promotion that changed the
    # project would wait for an agent.
    project = tmp_path / "project"
    write(project, "dags/promoted.py", dag_source("promoted", "# tested on dev\n"))
    deployed = setup.cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    blobs = setup.server.blob_count()

    result = setup.cli("promote", "--from", dev, "--to", prod, "--wait", "--timeout", "120")
    result.ok()
    assert "Parsed by Airflow" in result.err or "Airflow parsed it" in result.err, result.err
    assert setup.airflow.dag("promoted")["bundle_version"] == deployed["dags_version"]
    assert setup.server.blob_count() == blobs

    # A version that does not import: the promotion happens, the wait reports the error.
    write(project, "dags/promoted.py", dag_source("promoted", "import no_such_module_xyz\n"))
    broken = setup.cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    result = setup.cli(
        "promote", "--from", dev, "--to", prod, "--wait", "--timeout", "120", "--json"
    )
    assert result.code == 1, result.err
    answer = result.json()
    assert answer["dags_version"] == broken["dags_version"]
    assert answer["wait"]["state"] == "failed"
    assert "no_such_module_xyz" in result.err
    assert "promoted.py" in result.err
