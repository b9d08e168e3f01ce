"""`--rollback-on-failure`, and the rollback command printed after a failed wait, where an agent
fails to apply a deploy's project version.

Agents are played by reports PUT over the real API (as in agents_test.py); the failure is
reported before the deploy is made, for the project version the deploy will have, so the wait
sees it at once. No Airflow is needed: these deployments have no Airflow URL, so once the agents
run the rolled-back version the DAG check ends with "no Airflow URL". tests/airflow/
airflow_deploy_test.py covers import errors in a real Airflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagship.project.scan import scan_project
from tests.cli.agents_test import deploy, put_agent
from tests.helpers import Api, Cli, write

UV_ERROR = "  x No solution found when resolving dependencies: no-such-package-dagship\n"


def break_the_project(api: Api, cli: Cli, project: Path, name: str) -> dict[str, Any]:
    """Deploy #1, run by agent af-1; then a requirements.txt that af-1 fails to apply, as
    reported for the version the next deploy of ``project`` will have. The first deploy."""
    first = deploy(cli, project, name, "--json").ok().json()
    put_agent(api, name, "af-1", project_version=first["project_version"])
    write(project, "requirements.txt", "no-such-package-dagship==1.0\n")
    put_agent(
        api,
        name,
        "af-1",
        state="failed",
        project_version=first["project_version"],
        target_version=scan_project(project).project.version,
        error=UV_ERROR,
    )
    return dict(first)


def test_a_failed_wait_prints_the_rollback_command(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    break_the_project(api, cli, project, name)
    result = deploy(cli, project, name, "--wait")
    result.failed("failed to apply project version", "No solution found")
    assert f"dagship rollback {name} --to 1 --wait" in result.err
    assert "--rollback-on-failure" in result.err
    assert [d["seq"] for d in api.deploys(name)] == [2, 1]  # nothing rolled back


def test_rollback_on_failure_goes_back_and_records_why(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    first = break_the_project(api, cli, project, name)
    result = deploy(cli, project, name, "--rollback-on-failure", "--json")
    result.failed(
        "Error: deploy #2 of",
        "failed in Airflow (agent af-1 on af-1.example failed to apply project version",
        "rolled back to the versions of deploy #1 with deploy #3",
        "no Airflow URL",  # the agents are back; there is no Airflow to look at
        "could not see it live (state no_airflow, above)",
    )
    body = result.json()
    assert (body["seq"], body["wait"]["state"]) == (2, "failed")
    rollback = body["rollback"]
    assert (rollback["failed_seq"], rollback["to_seq"], rollback["error"]) == (2, 1, None)
    assert rollback["deploy"]["seq"] == 3 and rollback["wait"]["state"] == "no_airflow"

    latest = api.deploys(name)[0]
    assert (latest["seq"], latest["origin"]) == (3, "rollback")
    assert latest["project_version"] == first["project_version"]
    assert latest["description"].startswith(
        "automatic rollback: deploy #2 failed in Airflow: agent af-1 on af-1.example failed "
        f"to apply project version {body['project_version']}: "
    )
    assert "No solution found" in latest["description"]


def test_rollback_on_failure_never_undoes_a_deploy_it_did_not_make(
    cli: Cli, api: Api, project: Path
) -> None:
    name = api.create_deployment()["name"]
    break_the_project(api, cli, project, name)
    deploy(cli, project, name).ok()  # deploy #2, made without waiting
    result = deploy(cli, project, name, "--rollback-on-failure")
    result.failed("Nothing was rolled back", "deploy #2 was already current")
    assert f"dagship rollback {name} --to 1 --wait\n" in result.err  # the way back, by hand
    assert [d["seq"] for d in api.deploys(name)] == [2, 1]


def test_the_first_deploy_has_nothing_to_roll_back_to(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    put_agent(
        api,
        name,
        "af-1",
        state="failed",
        target_version=scan_project(project).project.version,
        error=UV_ERROR,
    )
    result = deploy(cli, project, name, "--rollback-on-failure")
    result.failed(
        "the automatic rollback did not happen",
        "deploy #1 is the first deploy of",
        "no earlier deploy to roll back to",
    )
    assert [d["seq"] for d in api.deploys(name)] == [1]


def test_promote_rolls_the_target_back_when_its_agent_fails(
    cli: Cli, api: Api, project: Path
) -> None:
    source = api.create_deployment()["name"]
    target = api.create_deployment()["name"]
    first = break_the_project(api, cli, project, target)
    deploy(cli, project, source).ok()  # the version target's agent fails to apply
    result = cli("promote", "--from", source, "--to", target, "--rollback-on-failure")
    result.failed("failed in Airflow", "rolled back to the versions of deploy #1 with deploy #3")
    latest = api.deploys(target)[0]
    assert (latest["origin"], latest["project_version"]) == ("rollback", first["project_version"])
    assert latest["description"].startswith("automatic rollback: deploy #2 failed in Airflow")
