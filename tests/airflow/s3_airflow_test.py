"""DAG files dropped into S3 reach a real Airflow 3: the Lambda handler, invoked in parallel
for a burst of uploads, deploys the prefix; Airflow parses the DAGs at that deploy's bundle
version; deleting an object removes its DAG with the next deploy."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dagship.integrations.s3 import lambda_handler
from tests.airflow.conftest import AirflowSetup
from tests.helpers import dag_source
from tests.s3_helpers import MotoS3, invoke_in_parallel, s3_event, sqs_event

pytestmark = pytest.mark.timeout(600)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def test_a_burst_in_s3_reaches_airflow_at_the_deploy_s_version(
    airflow_setup: AirflowSetup,
    moto_s3: MotoS3,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = airflow_setup
    bucket = moto_s3.new_bucket(versioned=True)
    env = {
        **moto_s3.env(),
        "DAGSHIP_URL": setup.server.url,
        "DAGSHIP_API_TOKEN": setup.api.create_token("dag-author", setup.deployment),
        "DAGSHIP_DEPLOYMENT": setup.deployment,
        "DAGSHIP_S3_URL": f"s3://{bucket}/dags",
        "DAGSHIP_CACHE_DIR": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    names = ["s3_alpha", "s3_beta", "s3_gamma"]
    s3 = moto_s3.client()
    for name in names:
        s3.put_object(Bucket=bucket, Key=f"dags/{name}.py", Body=dag_source(name).encode())
    events = [s3_event(bucket, f"dags/{n}.py") for n in names[:2]]
    events.append(sqs_event(s3_event(bucket, f"dags/{names[2]}.py")))
    results = invoke_in_parallel(events)
    assert all(isinstance(r, dict) and r["synced"] for r in results), results

    deploy = setup.api.deploys(setup.deployment)[0]
    assert deploy["origin"] == "s3"
    assert sorted(setup.api.manifest(deploy["dags_version"])) == [f"{n}.py" for n in names]
    waited = setup.cli("deploys", "wait", deploy["id"], "--timeout", "240", "--json")
    assert waited.ok().json()["state"] == "parsed"
    for name in names:
        assert setup.airflow.dag(name)["bundle_version"] == deploy["dags_version"]

    s3.delete_object(Bucket=bucket, Key="dags/s3_beta.py")
    removed = lambda_handler(s3_event(bucket, "dags/s3_beta.py", "ObjectRemoved:Delete"))
    assert removed["deployed"] is True
    latest = setup.api.deploys(setup.deployment)[0]
    assert sorted(setup.api.manifest(latest["dags_version"])) == ["s3_alpha.py", "s3_gamma.py"]
    setup.cli("deploys", "wait", latest["id"], "--timeout", "240", "--json").ok()
    # Airflow marks the DAG of a file gone from the bundle stale once it refreshes the bundle.
    wait_for(lambda: setup.airflow.dag("s3_beta")["is_stale"] is True, "s3_beta to go stale")
    assert setup.airflow.dag("s3_alpha")["is_stale"] is False
    assert setup.airflow.dag("s3_gamma")["is_stale"] is False
