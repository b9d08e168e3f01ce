"""When the agent counts a Celery worker as started: once Celery says it is ready, in this
start's output. A stand-in ``airflow`` executable plays the worker (a real one is started by
tests/agent/celery_test.py); what is tested is the agent's reading of a real process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dagship.agent import components
from dagship.agent.components import start_component, stop_component, wait_started
from dagship.agent.errors import AgentError
from dagship.core.vocabulary import Component


def stand_in(tmp_path: Path, script: str) -> Path:
    """An ``airflow`` executable that runs ``script`` (sh) whatever its arguments."""
    airflow = tmp_path / "bin" / "airflow"
    airflow.parent.mkdir()
    airflow.write_text(f"#!/bin/sh\n{script}\n")
    airflow.chmod(0o755)
    return airflow


def start(tmp_path: Path, airflow: Path) -> components.RunningComponent:
    env = {"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    log_file = tmp_path / "logs" / "celery-worker.log"
    return start_component(Component.CELERY_WORKER, airflow, env, log_file, "sha256-v2")


def test_a_worker_is_started_once_celery_says_it_is_ready(tmp_path: Path) -> None:
    airflow = stand_in(tmp_path, "echo loading; sleep 1; echo 'celery@host1 ready.'; exec sleep 60")
    running = start(tmp_path, airflow)
    try:
        began = time.monotonic()
        wait_started(running)
        assert 1 <= time.monotonic() - began < components.SETTLE_SECONDS
        assert running.exited() is None
    finally:
        stop_component(running, grace_period=5)


def test_a_worker_that_exits_after_the_settle_time_fails_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier start's "ready" in the same log does not count for this one.
    log_file = tmp_path / "logs" / "celery-worker.log"
    log_file.parent.mkdir()
    log_file.write_text("celery@host1 ready.\n")
    monkeypatch.setattr(components, "SETTLE_SECONDS", 1.0)
    airflow = stand_in(
        tmp_path, "echo \"ImportError: cannot import name 'retry'\"; sleep 3; exit 1"
    )
    running = start(tmp_path, airflow)
    try:
        with pytest.raises(AgentError) as failed:
            wait_started(running)
        message = str(failed.value)
        assert "celery-worker exited with code 1 while starting on sha256-v2" in message
        assert "cannot import name 'retry'" in message
    finally:
        stop_component(running, grace_period=5)
