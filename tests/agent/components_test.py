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


def start(
    tmp_path: Path, airflow: Path, component: Component = Component.CELERY_WORKER
) -> components.RunningComponent:
    env = {"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    log_file = tmp_path / "logs" / f"{component}.log"
    return start_component(component, airflow, env, log_file, "sha256-v2")


def test_a_worker_is_started_once_celery_says_it_is_ready(tmp_path: Path) -> None:
    airflow = stand_in(tmp_path, "echo loading; sleep 1; echo 'celery@host1 ready.'; exec sleep 60")
    running = start(tmp_path, airflow)
    try:
        began = time.monotonic()
        wait_started(running)
        assert time.monotonic() - began >= 1
        assert running.exited() is None
    finally:
        stop_component(running, grace_period=5)


def test_a_worker_that_exits_before_it_is_ready_fails_its_start(tmp_path: Path) -> None:
    # An earlier start's "ready" in the same log does not count for this one.
    log_file = tmp_path / "logs" / "celery-worker.log"
    log_file.parent.mkdir()
    log_file.write_text("celery@host1 ready.\n")
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


# A scheduler stand-in: `airflow jobs check ...` answers as Airflow's does, alive once the
# "scheduler" has written its job (after 2 s); any other command is the scheduler itself.
SCHEDULER = """\
if [ "$1" = jobs ]; then
    echo "$@" >> "$AIRFLOW_HOME/checks"
    if [ -f "$AIRFLOW_HOME/job" ]; then echo 'Found one alive job.'; exit 0; fi
    echo 'No alive jobs found.' >&2; exit 1
fi
sleep 2; touch "$AIRFLOW_HOME/job"; exec sleep 60
"""


def test_a_scheduler_is_started_once_airflow_finds_its_job_alive(tmp_path: Path) -> None:
    running = start(tmp_path, stand_in(tmp_path, SCHEDULER), Component.SCHEDULER)
    try:
        wait_started(running)
        assert (tmp_path / "home" / "job").is_file()
        checks = (tmp_path / "home" / "checks").read_text().splitlines()
        assert checks[-1] == "jobs check --job-type SchedulerJob --local"
    finally:
        stop_component(running, grace_period=5)


def test_a_triggerer_whose_job_never_comes_alive_fails_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components, "HEALTH_TIMEOUT", 3.0)
    # Alive as a process, but it never heartbeats: the old rule (alive 8 s) took it as started.
    airflow = stand_in(
        tmp_path, 'if [ "$1" = jobs ]; then exit 1; fi; echo "cannot reach the database"; sleep 60'
    )
    running = start(tmp_path, airflow, Component.TRIGGERER)
    try:
        with pytest.raises(AgentError) as failed:
            wait_started(running)
        message = str(failed.value)
        assert "triggerer was not ready (`airflow jobs check --job-type TriggererJob" in message
        assert "cannot reach the database" in message
        assert running.exited() is None
    finally:
        stop_component(running, grace_period=5)
