"""``dagship agent run`` end to end: a real server, real uv builds and one real Airflow 3.3.2
standalone run by the agent for the whole module. The tests run in order and each starts
from where the one before left the deployment."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

import dagship.local.airflow as runtime
from tests.agent.conftest import AgentSetup, wait_until, write_project
from tests.helpers import write

if not runtime.airflow_installed():
    pytest.skip("Apache Airflow is not installed next to dagship", allow_module_level=True)

# A first apply took 235 s and one test over the suite's default 300 s on a loaded 2-core
# machine (the Celery module allows 900 s for the same reason).
pytestmark = pytest.mark.timeout(600)

WAIT = "600"  # seconds: the first apply builds an environment and migrates a database


def run_dag(setup: AgentSetup) -> Any:
    """Trigger ``uses_both`` and return its task's result once the run succeeded."""
    airflow = setup.airflow
    run_id = airflow.trigger("uses_both")["dag_run_id"]
    state = wait_until(
        lambda: (s := airflow.dag_run("uses_both", run_id)["state"]) in ("success", "failed") and s,
        180,
        "the DAG run to finish",
    )
    assert state == "success", airflow.task_instances("uses_both", run_id)
    return airflow.xcom("uses_both", run_id, "run")


def running_version(setup: AgentSetup) -> str:
    (agent,) = setup.api.get(f"/deployments/{setup.deployment}/agents").json()
    return str(agent["project_version"])


def test_a_full_deploy_runs_include_a_requirement_and_a_plugin(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    write_project(setup.project, "helper-v1")
    result = setup.cli.run(
        "deploy",
        setup.project,
        "-d",
        setup.deployment,
        "--full",
        "--no-parse",
        "--wait",
        "--timeout",
        WAIT,
        "--json",
        timeout=700,
    ).ok()
    deploy = result.json()
    assert running_version(setup) == deploy["project_version"]
    assert setup.airflow.import_errors() == []
    plugins = setup.airflow._json("GET", "/api/v2/plugins")["plugins"]
    assert "agent_test_plugin" in [p["name"] for p in plugins]
    assert run_dag(setup) == "helper-v1 moo"
    state = setup.agent.state()
    assert state["current"] == deploy["project_version"]
    assert [p["name"] for p in state["processes"]] == ["standalone"]


def test_a_dag_only_deploy_restarts_nothing(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    before = setup.agent.state()
    pids = setup.agent.standalone_groups()
    write(setup.project, "dags/another.py", "# a DAG file that defines nothing yet\n")
    setup.cli.run(
        "deploy",
        setup.project,
        "-d",
        setup.deployment,
        "--dags",
        "--no-parse",
        "--wait",
        "--timeout",
        "120",
        timeout=200,
    ).ok()
    time.sleep(3)  # a restart would have begun by now
    after = setup.agent.state()
    assert after["processes"] == before["processes"]
    assert after["last_apply"] == before["last_apply"]
    assert setup.agent.standalone_groups() == pids


LOCAL_SETTINGS_ERROR = "this project version cannot start Airflow"


def test_a_version_airflow_cannot_start_on_falls_back_to_the_one_before(
    agent_setup: AgentSetup,
) -> None:
    setup = agent_setup
    agent = setup.agent
    good = agent.state()["current"]
    good_seq = max(d["seq"] for d in setup.api.deploys(setup.deployment))
    # Same requirements: the environment is reused and builds fine; Airflow then imports the
    # project root's airflow_local_settings.py at start-up and exits.
    settings = write(
        setup.project,
        "airflow_local_settings.py",
        f"raise RuntimeError({LOCAL_SETTINGS_ERROR!r})\n",
    )
    try:
        result = setup.cli.run(
            "deploy",
            setup.project,
            "-d",
            setup.deployment,
            "--project",
            "--no-parse",
            "--wait",
            "--timeout",
            WAIT,
            timeout=700,
        )
    finally:
        settings.unlink()
    (reported,) = setup.api.get(f"/deployments/{setup.deployment}/agents").json()
    # Not Result.failed: the error quotes the component's log verbatim, Airflow's traceback too.
    assert result.code == 1, result.err
    for needle in (reported["host"], "standalone exited with code 1", LOCAL_SETTINGS_ERROR):
        assert needle in result.err, result.err
    # Only what this start logged: not the lines of the version stopped before it.
    assert "Shutting down components" not in reported["error"]
    assert reported["state"] == "failed"
    assert LOCAL_SETTINGS_ERROR in reported["error"]
    assert f"runs project version {good} again" in reported["error"]
    assert reported["project_version"] == good
    assert agent.state()["current"] == good
    # The version before runs again, once: healthy, the same DAGs, runs succeed.
    assert runtime.is_healthy(setup.airflow.health())
    assert len(agent.standalone_groups()) == 1
    assert [p["name"] for p in agent.state()["processes"]] == ["standalone"]
    assert setup.airflow.import_errors() == []
    assert run_dag(setup) == "helper-v1 moo"
    # Back to the good deploy: nothing restarts, and the agent no longer reports the failure.
    groups = agent.standalone_groups()
    setup.cli.run(
        "rollback",
        setup.deployment,
        "--to",
        str(good_seq),
        "--wait",
        "--timeout",
        "300",
        timeout=400,
    ).ok()
    wait_until(
        lambda: (
            setup.api.get(f"/deployments/{setup.deployment}/agents").json()[0]["state"] == "running"
        ),
        60,
        "the agent to report running",
    )
    assert agent.state()["current"] == good
    assert agent.standalone_groups() == groups


def test_an_unresolvable_requirement_fails_and_the_old_version_keeps_running(
    agent_setup: AgentSetup,
) -> None:
    setup = agent_setup
    before = setup.agent.state()
    write(setup.project, "requirements.txt", "cowsay\ndagship-no-such-package-anywhere==1.0\n")
    result = setup.cli.run(
        "deploy",
        setup.project,
        "-d",
        setup.deployment,
        "--project",
        "--no-parse",
        "--wait",
        "--timeout",
        "300",
        timeout=400,
    )
    result.failed("dagship-no-such-package-anywhere")
    after = setup.agent.state()
    assert after["current"] == before["current"]
    assert after["processes"] == before["processes"]
    (agent,) = setup.api.get(f"/deployments/{setup.deployment}/agents").json()
    assert agent["state"] == "failed"
    assert "dagship-no-such-package-anywhere" in agent["error"]
    # Airflow keeps serving and running the previous version.
    assert run_dag(setup) == "helper-v1 moo"


def test_a_rollback_reuses_the_cached_environment(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    first = setup.agent.state()["current"]
    # A new requirement set: a new environment is built.
    write_project(setup.project, "helper-v2", "cowsay\npyjokes\n")
    deploy = (
        setup.cli.run(
            "deploy",
            setup.project,
            "-d",
            setup.deployment,
            "--project",
            "--no-parse",
            "--wait",
            "--timeout",
            WAIT,
            "--json",
            timeout=700,
        )
        .ok()
        .json()
    )
    assert setup.agent.state()["last_apply"]["environment"] == "built"
    assert run_dag(setup) == "helper-v2 moo"
    # Back to the first project version: no build, a restart.
    seq = next(
        d["seq"] for d in setup.api.deploys(setup.deployment) if d["project_version"] == first
    )
    setup.cli.run(
        "rollback",
        setup.deployment,
        "--to",
        str(seq),
        "--wait",
        "--timeout",
        "300",
        timeout=400,
    ).ok()
    state = setup.agent.state()
    assert state["current"] == first
    assert state["previous"] == deploy["project_version"]
    assert state["last_apply"]["environment"] == "reused"
    assert run_dag(setup) == "helper-v1 moo"


def test_kill_9_during_a_build_then_one_version_comes_up(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    agent = setup.agent
    # A changed requirements file is a new environment: a build of several seconds.
    write_project(setup.project, "helper-v3", "cowsay\n# build after a crash\n")
    deploy = (
        setup.cli.run(
            "deploy", setup.project, "-d", setup.deployment, "--project", "--no-parse", "--json"
        )
        .ok()
        .json()
    )
    wait_until(
        lambda: any(p["name"] == "build" for p in agent.state()["processes"]),
        60,
        "the agent to start the build",
    )
    agent.kill9()
    agent.start()
    setup.cli.run("deploys", "wait", deploy["id"], "--timeout", WAIT, timeout=700).ok()
    state = agent.state()
    assert state["current"] == deploy["project_version"]
    assert [p["name"] for p in state["processes"]] == ["standalone"]
    assert len(agent.standalone_groups()) == 1
    assert run_dag(setup) == "helper-v3 moo"


def test_a_newer_version_abandons_the_build_of_an_older_one(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    agent = setup.agent
    deploys = []
    for name in ("older", "newer"):
        # Each requirements file is a new environment to build.
        write_project(setup.project, f"helper-{name}", f"cowsay\n# {name}\n")
        deploys.append(
            setup.cli.run(
                "deploy",
                setup.project,
                "-d",
                setup.deployment,
                "--project",
                "--no-parse",
                "--json",
            )
            .ok()
            .json()
        )
        if name == "older":
            wait_until(
                lambda: any(p["name"] == "build" for p in agent.state()["processes"]),
                60,
                "the agent to start building the older version",
            )
    older, newer = deploys
    setup.cli.run("deploys", "wait", newer["id"], "--timeout", WAIT, timeout=700).ok()
    assert f"abandoning the build of {older['project_version']}" in agent.log()
    assert agent.state()["current"] == newer["project_version"]
    assert run_dag(setup) == "helper-newer moo"


def test_kill_9_during_a_restart_then_one_version_comes_up(agent_setup: AgentSetup) -> None:
    setup = agent_setup
    agent = setup.agent
    stops = agent.log().count("standalone stopped")
    write_project(setup.project, "helper-v4", "cowsay\n# build after a crash\n")
    deploy = (
        setup.cli.run(
            "deploy", setup.project, "-d", setup.deployment, "--project", "--no-parse", "--json"
        )
        .ok()
        .json()
    )
    wait_until(
        lambda: (
            agent.log().count("standalone stopped") > stops
            or "standalone runs project version " + deploy["project_version"] in agent.log()
        ),
        300,
        "the agent to stop the old version",
    )
    time.sleep(2)  # the new version is starting
    agent.kill9()
    agent.start()
    setup.cli.run("deploys", "wait", deploy["id"], "--timeout", WAIT, timeout=700).ok()
    assert agent.state()["current"] == deploy["project_version"]
    assert len(agent.standalone_groups()) == 1
    assert run_dag(setup) == "helper-v4 moo"


def test_server_down_keeps_airflow_running_and_the_agent_reports_when_it_is_back(
    agent_setup: AgentSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = agent_setup
    groups = setup.agent.standalone_groups()
    port = setup.server.port
    setup.server.kill()
    time.sleep(15)
    assert setup.agent.process is not None and setup.agent.process.poll() is None
    assert runtime.is_healthy(setup.airflow.health())
    assert setup.agent.standalone_groups() == groups
    assert "cannot get the current project version" in setup.agent.log()
    # Back on the same address: the agent reports again.
    monkeypatch.setattr("tests.helpers.free_port", lambda: port)
    setup.server.start()
    reported = time.time()

    def seen_again() -> bool:
        r = httpx.get(
            f"{setup.server.url}/api/v1/deployments/{setup.deployment}/agents",
            headers={"Authorization": f"Bearer {setup.server.admin_token}"},
        )
        (agent,) = r.json()
        from datetime import datetime

        seen = datetime.fromisoformat(agent["last_seen_at"].replace("Z", "+00:00"))
        return seen.timestamp() >= reported - 1 and agent["state"] == "running"

    wait_until(seen_again, 90, "the agent to report again")
    assert setup.agent.standalone_groups() == groups


ACROSS_SWITCH = """\
import json
import json
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
        said = {{"helper": helpers.helper(), "file": helpers.__file__}}
        (MARKERS / "finished").write_text(json.dumps(said))
        return said["helper"]

    sleep_then_mark()


across_switch()
"""
SLEEP_SECONDS = 25


def test_a_task_running_across_a_project_switch_finishes_on_the_old_version(
    agent_setup: AgentSetup,
) -> None:
    setup = agent_setup
    agent = setup.agent
    airflow = setup.airflow
    old = agent.state()["current"]
    markers = setup.project.parent / "markers"
    source = ACROSS_SWITCH.format(markers=str(markers), seconds=SLEEP_SECONDS)
    write(setup.project, "dags/across_switch.py", source)
    setup.cli.run(
        "deploy",
        setup.project,
        "-d",
        setup.deployment,
        "--dags",
        "--no-parse",
        "--wait",
        "--timeout",
        "300",
        timeout=400,
    ).ok()
    old_helper = (setup.project / "include" / "helpers.py").read_text()
    run_id = airflow.trigger("across_switch")["dag_run_id"]
    wait_until(lambda: (markers / "started").is_file(), 180, "the task to start")
    # Only include/ changes: the environment is reused, the components restart.
    write(setup.project, "include/helpers.py", old_helper.replace("return '", "return 'switched-"))
    deploy = (
        setup.cli.run(
            "deploy",
            setup.project,
            "-d",
            setup.deployment,
            "--project",
            "--no-parse",
            "--wait",
            "--timeout",
            WAIT,
            "--json",
            timeout=700,
        )
        .ok()
        .json()
    )
    new = deploy["project_version"]
    assert new != old
    # The task ran to its end on the old version's code, once, and Airflow recorded success.
    state = wait_until(
        lambda: (
            (s := airflow.dag_run("across_switch", run_id)["state"]) in ("success", "failed") and s
        ),
        180,
        "the DAG run to finish",
    )
    (instance,) = airflow.task_instances("across_switch", run_id)
    assert (state, instance["state"], instance["try_number"]) == ("success", "success", 1), instance
    finished = json.loads((markers / "finished").read_text())
    assert finished["file"] == str(agent.home / "projects" / old / "include" / "helpers.py")
    assert airflow.xcom("across_switch", run_id, "sleep_then_mark") == finished["helper"]
    assert not finished["helper"].startswith("switched-")
    # The components run the new version now, and so does a new task.
    assert running_version(setup) == new
    assert agent.state()["current"] == new
    assert [p["version"] for p in agent.state()["processes"]] == [new]
    assert run_dag(setup).startswith("switched-")
