"""The Lambda handler with S3's own event JSON (direct and wrapped in SQS messages), invoked
in parallel as Lambda does during a burst of uploads; and the zip `lambda-package` writes."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dagship.integrations.s3 import lambda_handler
from dagship.integrations.s3.bucket import S3SyncError
from tests.helpers import Api, Cli, Server, unique
from tests.s3_helpers import MotoS3, invoke_in_parallel, s3_event, sqs_event

DAG = b"from airflow.sdk import dag\n\n@dag()\ndef %s():\n    pass\n\n%s()\n"


@pytest.fixture
def lambda_env(
    server: Server, api: Api, moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    name = unique()
    api.create_deployment(name)
    bucket = moto_s3.new_bucket(versioned=True)
    env = {
        **moto_s3.env(),
        "DAGSHIP_URL": server.url,
        # What the function should hold: a DAG-author token bound to its deployment.
        "DAGSHIP_API_TOKEN": api.create_token("dag-author", name),
        "DAGSHIP_DEPLOYMENT": name,
        "DAGSHIP_S3_URL": f"s3://{bucket}/dags",
        "DAGSHIP_CACHE_DIR": str(tmp_path / "cache"),
        "BUCKET": bucket,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_a_burst_of_uploads_ends_in_the_exact_final_state(
    api: Api, moto_s3: MotoS3, lambda_env: dict[str, str]
) -> None:
    bucket, name = lambda_env["BUCKET"], lambda_env["DAGSHIP_DEPLOYMENT"]
    files = {f"dags/burst_{n}.py": DAG % (f"b{n}".encode(), f"b{n}".encode()) for n in range(3)}
    s3 = moto_s3.client()
    for key, data in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    keys = list(files)
    events = [
        s3_event(bucket, keys[0]),
        s3_event(bucket, keys[1]),
        sqs_event(s3_event(bucket, keys[2])),
    ]

    results = invoke_in_parallel(events)
    assert all(isinstance(r, dict) and r["synced"] for r in results), results
    deploys = api.deploys(name)
    # Every invocation synced the whole prefix: the first deploy already had all three files,
    # and the others found nothing changed (or lost the race and re-listed).
    assert [d["seq"] for d in deploys] == [1]
    assert sorted(api.manifest(deploys[0]["dags_version"])) == [
        "burst_0.py",
        "burst_1.py",
        "burst_2.py",
    ]
    assert deploys[0]["origin"] == "s3" and deploys[0]["s3_source"]["prefix"] == "dags/"

    s3.delete_object(Bucket=bucket, Key=keys[1])
    removed = lambda_handler(s3_event(bucket, keys[1], "ObjectRemoved:DeleteMarkerCreated"))
    assert removed["deployed"] is True and removed["seq"] == 2
    latest = api.deploys(name)[0]
    assert sorted(api.manifest(latest["dags_version"])) == ["burst_0.py", "burst_2.py"]


def test_concurrent_syncs_of_different_states_never_lose_the_last_one(
    api: Api, moto_s3: MotoS3, lambda_env: dict[str, str]
) -> None:
    # Uploads between invocations: each invocation may list a different state; whichever
    # deploys last, the deployment ends with the bucket's final state.
    bucket, name = lambda_env["BUCKET"], lambda_env["DAGSHIP_DEPLOYMENT"]
    s3 = moto_s3.client()
    events = []
    for n in range(4):
        key = f"dags/step_{n}.py"
        s3.put_object(Bucket=bucket, Key=key, Body=DAG % (f"s{n}".encode(), f"s{n}".encode()))
        events.append(s3_event(bucket, key))
    results = invoke_in_parallel(events)
    assert all(isinstance(r, dict) for r in results), results
    final = lambda_handler(events[-1])
    assert final["deployed"] is False, "the parallel invocations already deployed the end state"
    current = api.deploys(name)[0]
    assert sorted(api.manifest(current["dags_version"])) == [f"step_{n}.py" for n in range(4)]
    seqs = sorted(d["seq"] for d in api.deploys(name))
    assert seqs == list(range(1, len(seqs) + 1))


def test_events_outside_the_prefix_and_other_buckets(
    api: Api, moto_s3: MotoS3, lambda_env: dict[str, str]
) -> None:
    bucket, name = lambda_env["BUCKET"], lambda_env["DAGSHIP_DEPLOYMENT"]
    moto_s3.client().put_object(Bucket=bucket, Key="dags/a.py", Body=b"x = 1\n")
    assert lambda_handler(s3_event(bucket, "logs/run.txt"))["synced"] is False
    # S3 sends a test event when a notification is set up: no records, nothing to do.
    assert lambda_handler({"Event": "s3:TestEvent", "Bucket": bucket})["synced"] is False
    with pytest.raises(S3SyncError, match=r"'dags/a.py' in bucket 'someone-else'"):
        lambda_handler(sqs_event(s3_event("someone-else", "dags/a.py")))
    assert api.deploy_count(name) == 0


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DAGSHIP_URL", "DAGSHIP_DEPLOYMENT", "DAGSHIP_S3_URL", "DAGSHIP_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DAGSHIP_URL", "http://127.0.0.1:1")
    with pytest.raises(S3SyncError, match=r"DAGSHIP_DEPLOYMENT, DAGSHIP_S3_URL, DAGSHIP_API"):
        lambda_handler(s3_event("b", "dags/a.py"))


def test_lambda_package_holds_the_handler_and_no_server(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dagship-lambda.zip"
    written = cli("s3", "lambda-package", str(out), "--json").ok().json()
    assert written["handler"] == "dagship.integrations.s3.lambda_handler"
    names = zipfile.ZipFile(out).namelist()
    assert "dagship/integrations/s3/handler.py" in names and "httpx/__init__.py" in names
    tops = {name.split("/")[0] for name in names}
    assert not tops & {"airflow", "fastapi", "sqlalchemy", "uvicorn", "boto3", "typer"}
    assert not any(name.startswith("dagship/server/") for name in names)
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(out).extractall(unpacked)
    # With no site-packages at all (python -S): the handler imports from the zip alone.
    code = (
        f"import sys; sys.path.insert(0, {str(unpacked)!r})\n"
        "from dagship.integrations.s3.handler import relevant_keys\n"
        "from dagship.integrations.s3.bucket import parse_s3_url\n"
        "import dagship.integrations.s3.sync\n"
        "print(relevant_keys({'Records': []}, parse_s3_url('s3://b/p')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
