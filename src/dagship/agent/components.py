"""Airflow components as processes: how each starts, proves it is up, and stops.

Each component runs as ``airflow <command>`` from the project version's environment, in its own
process group, its output appended to ``logs/<component>.log``. Stopping ends the group and
every descendant (local/airflow.py's ``AirflowProcess``); the components that run tasks are
first asked to finish them, within the grace period: a Celery worker gets Celery's warm
shutdown; in ``standalone`` the scheduler alone is stopped first (its LocalExecutor waits for
the running tasks) while the API server those tasks report to keeps serving, and only then
the rest of standalone.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from dagship.agent.errors import AgentError
from dagship.airflow_api.client import AirflowClient
from dagship.core.vocabulary import Component
from dagship.local.airflow import AirflowProcess, is_healthy

# The order components start in (and the reverse of the order they stop in). The API server
# stops last and starts first: tasks still running on Celery workers report to it (the
# Execution API), so it is down only for its own restart, not for the others'.
START_ORDER = (
    Component.STANDALONE,
    Component.API_SERVER,
    Component.SCHEDULER,
    Component.DAG_PROCESSOR,
    Component.TRIGGERER,
    Component.CELERY_WORKER,
)
COMMANDS = {
    Component.STANDALONE: ["standalone"],
    Component.API_SERVER: ["api-server"],
    Component.SCHEDULER: ["scheduler"],
    Component.DAG_PROCESSOR: ["dag-processor"],
    Component.TRIGGERER: ["triggerer"],
    Component.CELERY_WORKER: ["celery", "worker"],
}
# Components that run tasks, and the signal that asks each to finish them and exit: Celery's
# warm shutdown is SIGTERM; `airflow standalone` stops its components in order on SIGINT
# (SIGTERM would end it at once and leave them behind).
GRACEFUL_STOP = {Component.STANDALONE: signal.SIGINT, Component.CELERY_WORKER: signal.SIGTERM}
# The Airflow job of the components without a health endpoint: they are started once
# `airflow jobs check` finds their job alive (heartbeating) in the metadata database.
JOB_TYPES = {
    Component.SCHEDULER: "SchedulerJob",
    Component.DAG_PROCESSOR: "DagProcessorJob",
    Component.TRIGGERER: "TriggererJob",
}
JOB_CHECK_TIMEOUT = 60.0
# Up to this long for a component to say it is up (first start migrates a database).
HEALTH_TIMEOUT = 240.0
STOP_TIMEOUT = 30.0
LOG_LINES = 20


@dataclass
class RunningComponent:
    component: Component
    version: str
    process: AirflowProcess
    # The ``airflow`` executable and the environment it runs with (for ``airflow jobs check``).
    airflow: Path
    env: Mapping[str, str]
    # Where this start's output begins in the component's log (logs are appended across starts).
    log_offset: int = 0

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    def exited(self) -> int | None:
        """The exit code if the component ended, else None."""
        assert self.process.process is not None
        return self.process.process.poll()


def ordered(components: list[Component]) -> list[Component]:
    return sorted(set(components), key=START_ORDER.index)


def start_component(
    component: Component, airflow: Path, env: Mapping[str, str], log_file: Path, version: str
) -> RunningComponent:
    """Start ``component`` with the ``airflow`` executable of the version's environment."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        offset = log.tell()
        log.write(f"\n==> dagship agent: starting {component} on {version}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [str(airflow), *COMMANDS[component]],
            env=dict(env),
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{api_port(env)}"
    airflow_process = AirflowProcess(url, home, log_file, process)
    return RunningComponent(component, version, airflow_process, airflow, env, offset)


def api_port(env: Mapping[str, str]) -> int:
    return int(env.get("AIRFLOW__API__PORT") or 8080)


def wait_started(running: RunningComponent) -> None:
    """Return once ``running`` is up: Airflow's health endpoint says so for the API server
    (all of it for ``standalone``), Celery says so for a worker, and ``airflow jobs check``
    finds the job of a scheduler, DAG processor or triggerer alive. Raises AgentError with the
    end of its log when it exits or does not get there within ``HEALTH_TIMEOUT``."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    with AirflowClient(running.process.url) as client:
        while True:
            code = running.exited()
            if code is not None:
                raise AgentError(
                    f"{running.component} exited with code {code} while starting on "
                    f"{running.version}:\n{log_tail(running.process.log_file, running.log_offset)}"
                )
            if _says_started(running, client):
                return
            if time.monotonic() > deadline:
                ready = _READY[running.component].format(url=running.process.url)
                raise AgentError(
                    f"{running.component} was not ready ({ready}) within "
                    f"{HEALTH_TIMEOUT:.0f}s on {running.version}:\n"
                    f"{log_tail(running.process.log_file, running.log_offset)}"
                )
            time.sleep(0.5)


# What "ready" means for each component, in the words of the error that says it was not.
_READY = {
    Component.STANDALONE: "Airflow's health endpoint at {url}: database, scheduler and DAG "
    "processor",
    Component.API_SERVER: "Airflow's health endpoint at {url}",
    Component.CELERY_WORKER: "Celery's `celery@host ready.`",
    **{c: f"`airflow jobs check --job-type {job} --local`" for c, job in JOB_TYPES.items()},
}


def _says_started(running: RunningComponent, client: AirflowClient) -> bool:
    if running.component in (Component.STANDALONE, Component.API_SERVER):
        document = client.health()
        return document is not None and (
            running.component is not Component.STANDALONE or is_healthy(document)
        )
    if running.component is Component.CELERY_WORKER:
        return celery_ready(running)
    return job_alive(running)


def job_alive(running: RunningComponent) -> bool:
    """Whether Airflow's metadata database holds a live (heartbeating) job of ``running``'s
    type on this host: ``airflow jobs check --local``, run with the component's environment.
    The jobs of components stopped before it were ended by their orderly stop."""
    job_type = JOB_TYPES[running.component]
    try:
        done = subprocess.run(
            [str(running.airflow), "jobs", "check", "--job-type", job_type, "--local"],
            env=dict(running.env),
            cwd=running.process.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=JOB_CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


# Celery's own word that a worker consumes tasks ("celery@host ready."), in its output.
_CELERY_READY = re.compile(rb"\S+@\S+ ready\.")


def celery_ready(running: RunningComponent) -> bool:
    """Whether the Celery worker said, since this start, that it is ready for tasks."""
    try:
        with running.process.log_file.open("rb") as log:
            log.seek(running.log_offset)
            return _CELERY_READY.search(log.read()) is not None
    except OSError:
        return False


def stop_component(running: RunningComponent, grace_period: float) -> list[str]:
    """Stop ``running``: a component that runs tasks is asked to finish them and gets
    ``grace_period`` seconds to exit; then its whole process group is ended. Returns the
    command lines of the processes that ignored SIGTERM for ``STOP_TIMEOUT`` and were killed."""
    popen = running.process.process
    assert popen is not None
    wait = grace_period
    if running.component is Component.STANDALONE:
        _stop_scheduler_first(running, grace_period)
        wait = STOP_TIMEOUT  # nothing runs tasks any more: the rest stops in seconds
    graceful = GRACEFUL_STOP.get(running.component)
    if graceful is not None and popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(graceful)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(wait)
    return running.process.stop(STOP_TIMEOUT)


def _stop_scheduler_first(running: RunningComponent, grace_period: float) -> None:
    """Stop standalone's scheduler and wait up to ``grace_period`` for it to exit: on SIGTERM
    its LocalExecutor waits for the running tasks. The API server keeps serving meanwhile, so
    that those tasks can heartbeat and record how they ended (standalone's own stop ends all
    its components at once, and a task finishing after its API server would be lost)."""
    scheduler = _standalone_child(running.pid, "scheduler")
    if scheduler is None:
        return
    with contextlib.suppress(psutil.Error):
        scheduler.terminate()
    # Not psutil's wait: the scheduler is standalone's child, and standalone never reaps it
    # (it stays a zombie until standalone exits).
    # Only while a task runs: a scheduler that had just started was once seen to sit out a
    # whole grace period after SIGTERM with nothing to finish.
    deadline = time.monotonic() + grace_period
    while _running(scheduler) and _runs_tasks(scheduler) and time.monotonic() < deadline:
        time.sleep(0.5)


# How the LocalExecutor titles its workers: "<prefix> <idle>", or the task it runs.
LOCAL_WORKER_TITLE = "airflow worker -- LocalExecutor"


def _runs_tasks(scheduler: psutil.Process) -> bool:
    """Whether a LocalExecutor worker of ``scheduler`` is running a task."""
    try:
        children = scheduler.children(recursive=True)
    except psutil.Error:
        return False
    for child in children:
        with contextlib.suppress(psutil.Error):
            title = " ".join(child.cmdline()).strip()
            if title.startswith(LOCAL_WORKER_TITLE) and not title.endswith("<idle>"):
                return True
    return False


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _standalone_child(pid: int, command: str) -> psutil.Process | None:
    """The ``airflow <command>`` process that ``airflow standalone`` (``pid``) started."""
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return None
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.cmdline()[-1:] == [command]:
                return child
    return None


def log_tail(path: Path, offset: int = 0, lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a log from ``offset`` on (where one start's output begins:
    an earlier run's lines would mislead), for a report."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
