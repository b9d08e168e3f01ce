"""A deployment on the CeleryExecutor run by two agents, as on two hosts: a real dagship
server, real uv builds, Redis as Celery's broker and PostgreSQL as Airflow's metadata database
and Celery's result backend, Airflow 3.3.2. One agent runs the API server, scheduler, DAG
processor and triggerer, the other a Celery worker; each has its own home and its own
environment cache, so each builds its own environment from the same project version.

One Airflow set-up for the module (the suite's most expensive): the tests run in order."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

import dagship.local.airflow as runtime
from tests.agent.conftest import AIRFLOW_FOR_TESTS, AgentProcess, wait_until
from tests.airflow.conftest import TestAirflowClient
from tests.helpers import (
    Api,
    Cli,
    Server,
    clean_env,
    create_pg_database,
    drop_pg_database,
    free_port,
    unique,
    write,
)

if not runtime.airflow_installed():
    pytest.skip("Apache Airflow is not installed next to dagship", allow_module_level=True)

# Each test builds two environments and restarts five components; on a loaded CI machine that
# can take longer than the suite's default of 300 s per test.
pytestmark = pytest.mark.timeout(900)

REDIS = ("127.0.0.1", 6379)
REDIS_DB = 13  # this module's alone: emptied before and after
WAIT = "900"  # seconds: two agents build environments and one migrates a PostgreSQL database
SCHEDULER_HOST = ["api-server", "scheduler", "dag-processor", "triggerer"]
WORKER_HOST = ["celery-worker"]

# What Airflow 3.3.2 needs to run on Celery with PostgreSQL: the Celery provider (it brings
# celery[redis]), psycopg2 for the metadata database and asyncpg for its async engine (Airflow
# derives `postgresql+asyncpg` from the sync URL). Pinned to releases that work with 3.3.2:
# uv would otherwise take Celery 5.6, which lacks what the provider imports from it.
REQUIREMENTS = """\
apache-airflow-providers-celery==3.26.0
celery==5.5.3
psycopg2-binary==2.9.13
asyncpg==0.32.0
"""
DAG = """\
import os
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="on_celery", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def on_celery():
    @task
    def run() -> str:
        from include.helpers import helper

        # Where the task ran: the Airflow home of the agent that ran it.
        return f"{helper()} @ {os.environ['AIRFLOW_HOME']}"

    run()


on_celery()
"""
HELPER_V1 = "def helper() -> str:\n    return 'helper-v1'\n"
# The second project version's helper uses a package that only its requirements.txt brings.
HELPER_V2 = """\
import cowsay


def helper() -> str:
    said = cowsay.get_output_string("cow", "moo")
    return "helper-v2" + (" moo" if "| moo |" in said else " (no cow)")
"""


@dataclass
class CelerySetup:
    api: Api
    cli: Cli
    deployment: str
    scheduler_host: AgentProcess
    worker_host: AgentProcess
    airflow: TestAirflowClient
    project: Path
    started: float


def redis_flush(db: int) -> None:
    """Empty one Redis database (RESP over a socket: the tests' interpreter has no Redis
    client, the project's environments do)."""
    with socket.create_connection(REDIS, timeout=5) as sock:
        sock.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(64)
            if not chunk:
                break
            answer += chunk
    assert answer == b"+OK\r\n+OK\r\n", answer


def celery_settings(database: str, api_port: int) -> dict[str, str]:
    """The Airflow settings both hosts share, as a Helm chart or a systemd unit gives them."""
    sync = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    return {
        **AIRFLOW_FOR_TESTS,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sync,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sync}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Tasks wait longer than the default 5 s for a busy machine's API server.
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        # Secrets every component must agree on (tasks' tokens, log requests, connections).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API__PORT": str(api_port),
        # Not the defaults (8793, 8794): other Airflows may run on this machine.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def host(
    root: Path, name: str, deployment: str, env: dict[str, str], components: list[str]
) -> AgentProcess:
    """An agent on a host of its own: its home and its environment cache."""
    (root / name).mkdir()
    env = {**env, "DAGSHIP_CACHE_DIR": str(root / name / "cache")}
    args = tuple(arg for component in components for arg in ("--component", component))
    return AgentProcess(deployment, root / name / "home", env, args=args)


@pytest.fixture(scope="module")
def celery_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CelerySetup]:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("celery")
    database, _ = create_pg_database()
    redis_flush(REDIS_DB)
    server: Server | None = None
    agents: list[AgentProcess] = []
    try:
        server = Server(root / "dagship-home").start()
        api = server.api()
        deployment = unique("cel")
        port = free_port()
        api.create_deployment(deployment, airflow_url=f"http://127.0.0.1:{port}")
        token = api.create_token("viewer", deployment=deployment)
        env = clean_env()
        env.update(celery_settings(database, port))
        env.update({"DAGSHIP_URL": server.url, "DAGSHIP_API_TOKEN": token})
        agents = [
            host(root, "scheduler-host", deployment, env, SCHEDULER_HOST),
            host(root, "worker-host", deployment, env, WORKER_HOST),
        ]
        for agent in agents:
            agent.start()
        # As an operator would check with `dagship deployment inspect`: both agents are there.
        wait_until(
            lambda: len(api.get(f"/deployments/{deployment}/agents").json()) == 2,
            60,
            "both agents' reports",
        )
        # Generous timeouts: on a busy machine one API server answers slowly at times.
        with TestAirflowClient(f"http://127.0.0.1:{port}", timeout=60) as airflow:
            yield CelerySetup(
                api=api,
                cli=Cli(server.url, server.admin_token),
                deployment=deployment,
                scheduler_host=agents[0],
                worker_host=agents[1],
                airflow=airflow,
                project=root / "project",
                started=started,
            )
    finally:
        for agent in agents:  # both hosts stop their components at once, then are waited for
            if agent.process is not None and agent.process.poll() is None:
                agent.process.send_signal(signal.SIGTERM)
        for agent in agents:
            agent.stop()
        if server is not None:
            server.close()
        drop_pg_database(database)
        redis_flush(REDIS_DB)
        print(f"\nCelery set-up: {time.monotonic() - started:.0f}s from start to tear-down")


def deploy(setup: CelerySetup, kind: str) -> dict[str, Any]:
    """``dagship deploy --wait`` of the test project; its JSON answer, with how long it took."""
    began = time.monotonic()
    result = setup.cli.run(
        "deploy",
        setup.project,
        "-d",
        setup.deployment,
        kind,
        "--no-parse",
        "--wait",
        "--timeout",
        WAIT,
        "--json",
        timeout=float(WAIT) + 100,
    ).ok()
    answer: dict[str, Any] = result.json()
    answer["seconds"] = time.monotonic() - began
    answer["returned_at"] = datetime.now()  # local time, as the agents' logs write it
    print(f"\ndeploy {kind} --wait: {answer['seconds']:.0f}s")
    return answer


def run_dag(setup: CelerySetup) -> tuple[str, dict[str, Any]]:
    """Trigger ``on_celery``; its task's result and task instance once the run succeeded."""
    airflow = setup.airflow
    run_id = airflow.trigger("on_celery")["dag_run_id"]
    state = wait_until(
        lambda: (s := airflow.dag_run("on_celery", run_id)["state"]) in ("success", "failed") and s,
        240,
        "the DAG run to finish",
    )
    (instance,) = airflow.task_instances("on_celery", run_id)
    assert state == "success", instance
    return str(airflow.xcom("on_celery", run_id, "run")), instance


def assert_ran_on_the_worker(setup: CelerySetup, result: str, instance: dict[str, Any]) -> None:
    worker_home = setup.worker_host.home / "airflow"
    assert result.endswith(f" @ {worker_home}")
    assert instance["queue"] == "default"
    assert instance["hostname"]
    # The worker wrote the task's log in its own Airflow home, the other host did not.
    logs = f"dag_id=on_celery/run_id={instance['dag_run_id']}/task_id=run"
    assert list((worker_home / "logs").glob(f"{logs}/*.log"))
    assert not list((setup.scheduler_host.home / "airflow" / "logs").glob(f"{logs}/*.log"))


def reported(setup: CelerySetup) -> dict[str, dict[str, Any]]:
    """The agents' last reports, by the components they run."""
    agents = setup.api.get(f"/deployments/{setup.deployment}/agents").json()
    return {",".join(agent["components"]): agent for agent in agents}


def switched_at(agent: AgentProcess, version: str) -> datetime:
    """When ``agent`` logged that its components run ``version``."""
    for line in reversed(agent.log().splitlines()):
        if f"project version {version} runs (applied in" in line:
            return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    raise AssertionError(f"the agent in {agent.home} never ran {version}:\n{agent.log()}")


def assert_both_run(setup: CelerySetup, answer: dict[str, Any]) -> None:
    """``deploy --wait`` returned only once each agent ran the deploy's project version."""
    version = answer["project_version"]
    for agent_process in (setup.scheduler_host, setup.worker_host):
        assert switched_at(agent_process, version) <= answer["returned_at"]
    agents = reported(setup)
    assert sorted(agents) == ["api-server,scheduler,dag-processor,triggerer", "celery-worker"]
    for agent in agents.values():
        assert (agent["state"], agent["project_version"]) == ("running", version), agent
    assert len(answer["wait"]["agents"]) == 2
    for agent_process in (setup.scheduler_host, setup.worker_host):
        state = agent_process.state()
        assert state["current"] == version
        # Each host built its own environment (its own cache), none borrowed the other's.
        assert state["last_apply"]["environment"] == "built"


def test_the_first_full_deploy_runs_a_task_on_the_celery_worker(
    celery_setup: CelerySetup,
) -> None:
    setup = celery_setup
    write(setup.project, "dags/on_celery.py", DAG)
    write(setup.project, "include/__init__.py", "")
    write(setup.project, "include/helpers.py", HELPER_V1)
    write(setup.project, "requirements.txt", REQUIREMENTS)
    write(setup.project, "dagship.yaml", "airflow_version: 3.3.2\n")
    answer = deploy(setup, "--full")
    assert_both_run(setup, answer)
    assert setup.airflow.import_errors() == []
    result, instance = run_dag(setup)
    assert result.startswith("helper-v1 @ ")
    assert_ran_on_the_worker(setup, result, instance)
    assert [p["name"] for p in setup.worker_host.state()["processes"]] == ["celery-worker"]


def test_a_project_deploy_reaches_the_worker_with_the_new_helper_and_requirement(
    celery_setup: CelerySetup,
) -> None:
    setup = celery_setup
    worker_pid = setup.worker_host.state()["processes"][0]["pid"]
    write(setup.project, "include/helpers.py", HELPER_V2)
    write(setup.project, "requirements.txt", REQUIREMENTS + "cowsay==6.1\n")
    answer = deploy(setup, "--project")
    assert_both_run(setup, answer)
    # The worker was restarted on the new version, after Celery's warm shutdown (running
    # tasks finish first) of the old one.
    (process,) = setup.worker_host.state()["processes"]
    assert process["pid"] != worker_pid and process["version"] == answer["project_version"]
    output = (setup.worker_host.home / "logs" / "celery-worker.log").read_text()
    restart = output.index(f"starting celery-worker on {answer['project_version']}")
    assert "worker: Warm shutdown (MainProcess)" in output[:restart]
    result, instance = run_dag(setup)
    assert result.startswith("helper-v2 moo @ ")
    assert_ran_on_the_worker(setup, result, instance)
    print(f"\nCelery module so far: {time.monotonic() - setup.started:.0f}s")


ACROSS_SWITCH = """\
import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task

MARKERS = Path({markers!r})


@dag(dag_id="across_switch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def across_switch():
    # Retries allowed: a task killed by the switch would come back as a second try, not as
    # a failure, so only try_number tells.
    @task(retries=2)
    def sleep_then_mark() -> str:
        from include import helpers

        MARKERS.mkdir(parents=True, exist_ok=True)
        (MARKERS / "started").write_text(helpers.helper())
        time.sleep({seconds})
        said = {{"helper": helpers.helper(), "file": helpers.__file__, "pid": os.getpid()}}
        (MARKERS / "finished").write_text(json.dumps(said))
        return said["helper"]

    sleep_then_mark()


across_switch()
"""
SLEEP_SECONDS = 25


def test_a_task_running_across_a_project_switch_finishes_on_the_old_version(
    celery_setup: CelerySetup,
) -> None:
    setup = celery_setup
    airflow = setup.airflow
    old = setup.worker_host.state()["current"]
    markers = setup.project.parent / "markers"
    source = ACROSS_SWITCH.format(markers=str(markers), seconds=SLEEP_SECONDS)
    write(setup.project, "dags/across_switch.py", source)
    deploy(setup, "--dags")
    run_id = airflow.trigger("across_switch")["dag_run_id"]
    wait_until(lambda: (markers / "started").is_file(), 240, "the task to start")
    # Only include/ changes: each host reuses its environment and restarts its components.
    write(setup.project, "include/helpers.py", "def helper() -> str:\n    return 'helper-v3'\n")
    answer = deploy(setup, "--project")
    new = answer["project_version"]
    assert new != old
    # The task ran to its end on the old version's code, once, and Airflow recorded success.
    state = wait_until(
        lambda: (
            (s := airflow.dag_run("across_switch", run_id)["state"]) in ("success", "failed") and s
        ),
        240,
        "the DAG run to finish",
    )
    (instance,) = airflow.task_instances("across_switch", run_id)
    assert (state, instance["state"], instance["try_number"]) == ("success", "success", 1), instance
    finished = json.loads((markers / "finished").read_text())
    worker_tree = setup.worker_host.home / "projects" / old
    assert finished["file"] == str(worker_tree / "include" / "helpers.py")
    assert airflow.xcom("across_switch", run_id, "sleep_then_mark") == finished["helper"]
    assert finished["helper"] == (markers / "started").read_text() != "helper-v3"
    # The old worker let the task finish (warm shutdown) before the new one started.
    output = (setup.worker_host.home / "logs" / "celery-worker.log").read_text()
    *_, before, last = output.split("==> dagship agent: starting celery-worker on ")
    assert before.startswith(old) and last.startswith(new)
    assert "worker: Warm shutdown (MainProcess)" in before
    # Both hosts run the new version now, and a new task takes it.
    for agent in reported(setup).values():
        assert (agent["state"], agent["project_version"]) == ("running", new), agent
    for host_agent in (setup.scheduler_host, setup.worker_host):
        assert [p["version"] for p in host_agent.state()["processes"]] == [new] * len(
            host_agent.state()["processes"]
        )
    result, instance = run_dag(setup)
    assert result.startswith("helper-v3 @ ")
    assert_ran_on_the_worker(setup, result, instance)
