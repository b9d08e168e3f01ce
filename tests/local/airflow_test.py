"""The local-Airflow runtime without starting Airflow: its environment, its password file,
waiting for a parse through the REST API, and stopping a whole process tree (the real Airflow
runs in tests/cli/quickstart_test.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from dagship.airflow_api.client import AirflowClient
from dagship.local.airflow import (
    PASSWORDS_FILE,
    AirflowProcess,
    admin_password,
    airflow_env,
    ensure_admin_password,
    is_healthy,
    wait_for_version,
)
from dagship.local.errors import LocalError
from tests.helpers import free_port


def test_airflow_env_wires_the_bundle(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "af", 18080, "http://127.0.0.1:8787", "local", "dsh_secret")
    home = tmp_path / "af"
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] == str(home / "dag_bundles")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["DAGSHIP_API_TOKEN"] == "dsh_secret"
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert bundles == [
        {
            "name": "dagship-local",
            "classpath": "dagship.airflow.DagshipDagBundle",
            "kwargs": {
                "url": "http://127.0.0.1:8787",
                "deployment": "local",
                "refresh_interval": 0,
            },
        }
    ]
    # The token is never in the bundle kwargs: Airflow shows those in its config API.
    assert "dsh_secret" not in env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"]
    assert env["AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL"] == "0"
    assert env["AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL"] == "1"
    callable_setting = "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE"
    assert env[callable_setting] == "dagship.airflow.discovery.might_contain_dag"
    theirs = {callable_setting: "mine.heuristic"}
    assert airflow_env(home, 1, "http://x", "d", "t", base=theirs)[callable_setting] == (
        "mine.heuristic"
    )


def test_airflow_env_leaves_out_the_callers_own_airflow(tmp_path: Path) -> None:
    theirs = {
        "AIRFLOW_HOME": "/home/me/airflow",
        "AIRFLOW_CONFIG": "/home/me/airflow/airflow.cfg",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "postgresql+asyncpg://prod/airflow",
        "VIRTUAL_ENV": "/home/me/other-venv",
        "PATH": "/usr/bin",
    }
    env = airflow_env(tmp_path, 8080, "http://x", "prod", "t", base=theirs)
    assert env["AIRFLOW_HOME"] == str(tmp_path)
    assert "AIRFLOW_CONFIG" not in env  # Airflow's default: the home's airflow.cfg
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" not in env
    assert "VIRTUAL_ENV" not in env
    assert env["PATH"] == "/usr/bin"


def test_airflow_env_slow_and_named(tmp_path: Path) -> None:
    env = airflow_env(tmp_path, 8080, "http://x", "prod", "t", bundle_name="b", fast=False)
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert bundles[0]["name"] == "b"
    assert bundles[0]["kwargs"]["refresh_interval"] == 300
    assert "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL" not in env


def test_admin_password(tmp_path: Path) -> None:
    assert admin_password(tmp_path) is None
    written = ensure_admin_password(tmp_path)
    assert admin_password(tmp_path) == written == ensure_admin_password(tmp_path)
    assert (tmp_path / PASSWORDS_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / PASSWORDS_FILE).write_text('{"admin": "s3cret"}')
    assert admin_password(tmp_path) == "s3cret"
    (tmp_path / PASSWORDS_FILE).write_text("not json")
    assert admin_password(tmp_path) is None
    written = ensure_admin_password(tmp_path)
    assert admin_password(tmp_path) == written == ensure_admin_password(tmp_path)
    assert (tmp_path / PASSWORDS_FILE).stat().st_mode & 0o777 == 0o600


def test_is_healthy() -> None:
    ok = {"status": "healthy"}
    assert is_healthy({"metadatabase": ok, "scheduler": ok, "dag_processor": ok, "triggerer": ok})
    assert not is_healthy({"metadatabase": ok, "scheduler": {"status": "unhealthy"}})
    assert not is_healthy(None)


def _airflow_rest(dags: int, errors: int) -> httpx.MockTransport:
    """Airflow's REST API for one bundle holding ``dags`` DAGs at version v1 and ``errors``
    import errors, paged as Airflow pages (``limit`` at most 100)."""

    def handle(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params.get("limit", 50)), 100)
        offset = int(request.url.params.get("offset", 0))
        assert request.url.params.get("bundle_name") == "dagship-local"
        if request.url.path == "/api/v2/dags":
            items = [
                {"dag_id": f"d{i}", "bundle_name": "dagship-local", "bundle_version": "v1"}
                for i in range(dags)
            ]
            key = "dags"
        else:
            assert request.url.path == "/api/v2/importErrors"
            items = [
                {"filename": f"e{i}.py", "stack_trace": f"boom {i}", "bundle_name": "dagship-local"}
                for i in range(errors)
            ]
            key = "import_errors"
        page = items[offset : offset + limit]
        return httpx.Response(200, json={key: page, "total_entries": len(items)})

    return httpx.MockTransport(handle)


def test_wait_for_version_reports_every_import_error() -> None:
    """A bundle with 150 broken files: all 150 are reported, not the first page of 100."""
    with AirflowClient("http://airflow", transport=_airflow_rest(0, 150)) as client:
        parsed = wait_for_version(client, "dagship-local", "v1", timeout=5)
    assert parsed.dags == []
    assert len(parsed.import_errors) == 150
    assert parsed.import_errors[149] == {"filename": "e149.py", "stack_trace": "boom 149"}


def test_wait_for_version_with_dags_and_errors() -> None:
    with AirflowClient("http://airflow", transport=_airflow_rest(120, 150)) as client:
        parsed = wait_for_version(client, "dagship-local", "v1", timeout=5)
        assert len(parsed.dags) == 120 and len(parsed.import_errors) == 150
        with pytest.raises(LocalError, match="did not parse DAG version v2") as info:
            wait_for_version(client, "dagship-local", "v2", timeout=0)
    assert "0 of 120 DAGs at it" in str(info.value) and "e149.py: boom 149" in str(info.value)


# A stand-in for `airflow standalone`: a child in its process group, and a grandchild that
# starts a session of its own (its own process group) and ignores SIGTERM, as Airflow's task
# processes can.
TREE = """
import os, signal, subprocess, sys, time
grandchild = (
    "import os, signal, time\\n"
    "os.setsid()\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "print('grandchild', os.getpid(), flush=True)\\n"
    "time.sleep(600)\\n"
)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
subprocess.Popen([sys.executable, "-c", grandchild])
time.sleep(600)
"""


def test_stop_ends_the_whole_tree(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", TREE], stdout=subprocess.PIPE, start_new_session=True
    )
    airflow = AirflowProcess("http://127.0.0.1:1", tmp_path, tmp_path / "log", process)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line[0] == b"grandchild"
        grandchild = psutil.Process(int(line[1]))
        assert os.getpgid(grandchild.pid) != process.pid  # a group of its own
        deadline = time.monotonic() + 10
        while len(airflow.pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = airflow.pids()
        assert len(pids) == 3 and grandchild.pid in pids
        processes = [psutil.Process(pid) for pid in pids]
        started = time.monotonic()
        airflow.stop(timeout=2)
        assert time.monotonic() - started < 10
        assert airflow.pids() == set()
        for proc in processes:
            assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
        airflow.stop()  # twice is fine
    finally:
        for proc in airflow.processes():
            proc.kill()


def test_wait_ready_reports_an_early_exit(tmp_path: Path) -> None:
    log = tmp_path / "airflow.log"
    log.write_text("boom: the reason\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    airflow = AirflowProcess(f"http://127.0.0.1:{free_port()}", tmp_path, log, process)
    with pytest.raises(LocalError, match="code 3") as info:
        airflow.wait_ready(timeout=30)
    assert "boom: the reason" in str(info.value)
