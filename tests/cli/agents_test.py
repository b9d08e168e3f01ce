"""`--wait` on deploys that change the project, and agents in `deployment inspect`.

Agents are played by reports PUT over the real API, as `dagship agent run` sends them; no
Airflow is needed: once every agent runs the version, the wait goes on to the DAG check, which
here ends with "no Airflow URL".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import Api, Cli, write


def put_agent(api: Api, name: str, agent_id: str, **fields: Any) -> None:
    body = {"host": f"{agent_id}.example", "components": ["standalone"], "state": "running"}
    r = api.put(f"/deployments/{name}/agents/{agent_id}", json={**body, **fields})
    assert r.status_code == 200, r.text


def deploy(cli: Cli, project: Path, name: str, *extra: str) -> Any:
    return cli("deploy", project, "-d", name, "--no-parse", *extra)


def test_a_project_deploy_without_agents_says_how_to_start_one(
    cli: Cli, api: Api, project: Path
) -> None:
    name = api.create_deployment()["name"]
    result = deploy(cli, project, name, "--wait", "--json")
    result.failed("no agent", "in the last minute", f"dagship agent run --deployment {name}")
    body = result.json()
    assert (body["wait"]["state"], body["wait"]["project_changed"]) == ("no_agent", True)
    assert body["wait"]["agents"] == []
    assert body["wait"]["project_version"] == body["project_version"]


def test_every_agent_running_the_version_hands_over_to_airflow(
    cli: Cli, api: Api, project: Path
) -> None:
    name = api.create_deployment()["name"]
    made = deploy(cli, project, name, "--json").ok().json()
    for agent_id in ("af-1", "af-2"):
        put_agent(api, name, agent_id, project_version=made["project_version"])
    # The agents are done: the wait goes on to Airflow, which this deployment has none of.
    result = cli("deploys", "wait", made["id"], "--json")
    result.failed("no Airflow URL", "--airflow-url")
    waited = result.json()
    assert (waited["state"], waited["project_changed"]) == ("no_airflow", True)
    assert sorted(agent["host"] for agent in waited["agents"]) == ["af-1.example", "af-2.example"]


def test_an_agent_that_fails_prints_its_host_and_error(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    old = deploy(cli, project, name, "--json").ok().json()
    put_agent(api, name, "af-1", project_version=old["project_version"])
    write(project, "requirements.txt", "no-such-package-dagship==1.0\n")
    new = deploy(cli, project, name, "--json").ok().json()
    error = (
        "  x No solution found when resolving dependencies:\n"
        "  `-> Because no-such-package-dagship was not found in the package registry [pypi]\n"
        "      and you require no-such-package-dagship==1.0, we can conclude that your\n"
        "      requirements are unsatisfiable.\n"
    )
    put_agent(
        api,
        name,
        "af-1",
        state="failed",
        project_version=old["project_version"],
        target_version=new["project_version"],
        error=error,
    )
    put_agent(api, name, "af-2", state="building", target_version=new["project_version"])
    result = cli("deploys", "wait", new["id"])
    result.failed("1 agent of", "failed to apply project version", "--- af-1.example (agent af-1)")
    assert error in result.err  # verbatim: brackets, indentation and line breaks kept
    assert "af-2" not in result.err


def test_a_wait_that_times_out_names_the_agents_not_there(
    cli: Cli, api: Api, project: Path
) -> None:
    name = api.create_deployment()["name"]
    made = deploy(cli, project, name, "--json").ok().json()
    version = made["project_version"]
    put_agent(api, name, "af-1", project_version=version)
    put_agent(api, name, "af-2", state="building", target_version=version)
    result = cli("deploys", "wait", made["id"], "--timeout", "1")
    result.failed("timed out after 1s waiting for the agents", "af-2.example (agent af-2, building")
    assert "af-1.example (" not in result.err
    short = version[: len("sha256-") + 12]
    assert f"2 agents: 1 running {short}, 1 building {short}" in result.err, result.err


def test_rollback_wait_follows_the_agents_back(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    first = deploy(cli, project, name, "--json").ok().json()
    write(project, "include/helpers.py", "def helper() -> int:\n    return 2\n")
    second = deploy(cli, project, name, "--json").ok().json()
    put_agent(api, name, "af-1", project_version=second["project_version"])

    result = cli("rollback", name, "--wait", "--timeout", "1", "--json")
    result.failed("timed out", "af-1.example (agent af-1, running")
    body = result.json()
    assert body["seq"] == 3 and body["project_version"] == first["project_version"]
    assert (body["wait"]["state"], body["wait"]["timed_out"]) == ("applying", True)

    put_agent(api, name, "af-1", project_version=first["project_version"])
    human = cli("deploys", "wait", body["id"])
    human.failed("no Airflow URL")  # the agents are back; the DAG check has no Airflow
    assert "Rolled back" in cli("rollback", name, "--to", "2").ok().out  # no --wait: as before


def test_promote_wait_waits_for_the_targets_agents(cli: Cli, api: Api, project: Path) -> None:
    source = api.create_deployment()["name"]
    target = api.create_deployment()["name"]
    deploy(cli, project, source).ok()
    result = cli("promote", "--from", source, "--to", target, "--wait", "--json")
    result.failed(f"dagship agent run --deployment {target}")
    assert result.json()["wait"]["state"] == "no_agent"


def test_inspect_shows_the_agents(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    none = cli("deployment", "inspect", name).ok().out
    assert "none has reported (start one on each Airflow host with" in none
    assert f"`dagship agent run --deployment {name}`)" in none
    made = deploy(cli, project, name, "--json").ok().json()
    version = made["project_version"]
    short = version[: len("sha256-") + 12]
    put_agent(
        api,
        name,
        "web-1",
        host="web-1.example",
        components=["api-server", "scheduler", "dag-processor", "triggerer"],
        project_version=version,
    )
    put_agent(
        api,
        name,
        "worker-1",
        host="worker-[1]",
        components=["celery-worker"],
        state="failed",
        project_version=version,
        target_version="sha256-" + "a" * 64,
        error="Traceback (most recent call last):\n  ...\nImportError: no module [named] x\n",
    )
    text = cli("deployment", "inspect", name).ok().out
    assert "2 (2 reported in the last minute)" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    web = lines["web-1.example"]
    for needle in ("api-server, scheduler, dag-processor, triggerer", "running", short, "UTC"):
        assert needle in web, web
    worker = lines["worker-[1]"]
    for needle in ("celery-worker", "failed sha256-aaaaaaaaaaaa", short):
        assert needle in worker, worker
    assert worker.rstrip().endswith("ImportError: no module [named] x"), worker
    shown = cli("deployment", "inspect", name, "--json").ok().json()
    assert [agent["id"] for agent in shown["agents"]] == ["worker-1", "web-1"]
    assert shown["agents"][0]["error"].startswith("Traceback")
