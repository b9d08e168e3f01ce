"""The local-Airflow runtime without starting Airflow: its environment, its password file, and
stopping a whole process tree (the real Airflow runs in tests/cli/quickstart_test.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagship.local.airflow import (
    PASSWORDS_FILE,
    AirflowProcess,
    AirflowRuntimeError,
    admin_password,
    airflow_env,
    is_healthy,
)
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


def test_airflow_env_slow_and_named(tmp_path: Path) -> None:
    env = airflow_env(tmp_path, 8080, "http://x", "prod", "t", bundle_name="b", fast=False)
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert bundles[0]["name"] == "b"
    assert bundles[0]["kwargs"]["refresh_interval"] == 300
    assert "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL" not in env


def test_admin_password(tmp_path: Path) -> None:
    assert admin_password(tmp_path) is None
    (tmp_path / PASSWORDS_FILE).write_text('{"admin": "s3cret"}')
    assert admin_password(tmp_path) == "s3cret"
    (tmp_path / PASSWORDS_FILE).write_text("not json")
    assert admin_password(tmp_path) is None


def test_is_healthy() -> None:
    ok = {"status": "healthy"}
    assert is_healthy({"metadatabase": ok, "scheduler": ok, "dag_processor": ok, "triggerer": ok})
    assert not is_healthy({"metadatabase": ok, "scheduler": {"status": "unhealthy"}})
    assert not is_healthy(None)


# A stand-in for `airflow standalone`: a child in its process group and a grandchild that moves
# to its own group and ignores SIGTERM, as Airflow's task processes can.
TREE = """
import os, signal, subprocess, sys, time
grandchild = (
    "import os, signal, time\\n"
    "os.setpgid(0, 0)\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "time.sleep(600)\\n"
)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
subprocess.Popen([sys.executable, "-c", grandchild])
print("started", flush=True)
time.sleep(600)
"""


def test_stop_ends_the_whole_tree(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", TREE], stdout=subprocess.PIPE, start_new_session=True
    )
    airflow = AirflowProcess("http://127.0.0.1:1", tmp_path, tmp_path / "log", process)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"started"
        deadline = time.monotonic() + 10
        while len(airflow.pids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = airflow.pids()
        assert len(pids) == 3
        started = time.monotonic()
        airflow.stop(timeout=2)
        assert time.monotonic() - started < 10
        assert airflow.pids() == set()
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)
        airflow.stop()  # twice is fine
    finally:
        for pid in airflow.pids():
            os.kill(pid, signal.SIGKILL)


def test_wait_ready_reports_an_early_exit(tmp_path: Path) -> None:
    log = tmp_path / "airflow.log"
    log.write_text("boom: the reason\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    airflow = AirflowProcess(f"http://127.0.0.1:{free_port()}", tmp_path, log, process)
    with pytest.raises(AirflowRuntimeError, match="code 3") as info:
        airflow.wait_ready(timeout=30)
    assert "boom: the reason" in str(info.value)


def _state(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return raw[raw.rfind(")") + 2 :].split()[0]
