"""Agents over HTTP: the current project version they follow, their reports, and how a deploy
that changes the project waits for them (``GET /deploys/{id}/airflow``).

Agents are played by reports PUT over the real API, as ``dagship agent run`` sends them; the
deployments have no Airflow URL, or an unreachable one, so the DAG check takes its Airflow-free
paths once the agents are done.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dagship.core.manifest import EMPTY_VERSION
from tests.helpers import Api, Server, assert_error, entry, free_port, sha256


def report(**fields: Any) -> dict[str, Any]:
    """An agent report (``AgentReport``): a standalone host running nothing yet by default."""
    return {"host": "af-1.example", "components": ["standalone"], "state": "waiting", **fields}


def put_agent(api: Api, name: str, agent_id: str, **fields: Any) -> dict[str, Any]:
    r = api.put(f"/deployments/{name}/agents/{agent_id}", json=report(**fields))
    assert r.status_code == 200, r.text
    return dict(r.json())


def full_deploy(api: Api, name: str, mark: str) -> dict[str, Any]:
    """A full deploy whose project (requirements.txt) is new: it changes the project."""
    dags = {"a.py": f"dag {name}".encode()}
    project = {"requirements.txt": f"pkg  # {name} {mark}\n".encode()}
    r = api.deploy_files(name, dags, "full", project_files=project)
    assert r.status_code == 201, r.text
    return dict(r.json())


def status(api: Api, deploy_id: str) -> dict[str, Any]:
    r = api.get(f"/deploys/{deploy_id}/airflow")
    assert r.status_code == 200, r.text
    return dict(r.json())


# --------------------------------------------------------------------------- project/current


def test_project_current_with_etag(api: Api) -> None:
    name = api.create_deployment()["name"]
    found = assert_error(api.get(f"/deployments/{name}/project/current"), 404, "no_deploys")
    assert found["deployment"] == name
    project = {"requirements.txt": b"pkg\n", "include/h.py": name.encode()}
    made = api.deploy_files(name, {"a.py": b"a"}, "full", project_files=project).json()

    r = api.get(f"/deployments/{name}/project/current")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["deployment"], body["version"], body["deploy_id"], body["seq"]) == (
        name,
        made["project_version"],
        made["id"],
        1,
    )
    assert body["files"] == [entry(p, d) for p, d in sorted(project.items())]
    etag = r.headers["etag"]
    assert etag == f'"{made["project_version"]}"'
    assert (
        api.get(f"/deployments/{name}/project/current", headers={"If-None-Match": etag}).status_code
        == 304
    )

    # A DAG-only deploy carries the project version forward: still unchanged.
    api.deploy_files(name, {"a.py": b"a2"})
    still = api.get(f"/deployments/{name}/project/current", headers={"If-None-Match": etag})
    assert still.status_code == 304
    new = api.deploy_files(name, {"requirements.txt": b"pkg2\n"}, "project").json()
    changed = api.get(f"/deployments/{name}/project/current", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert (changed.json()["version"], changed.json()["seq"]) == (new["project_version"], 3)
    assert_error(api.get("/deployments/nope-nope/project/current"), 404, "deployment_not_found")
    for bad in ("-1", "61", "soon"):
        assert_error(
            api.get(f"/deployments/{name}/project/current", params={"wait": bad}), 422, "invalid"
        )


def test_project_current_waits_for_the_next_project_version(api: Api) -> None:
    name = api.create_deployment()["name"]
    first = full_deploy(api, name, "one")
    etag = f'"{first["project_version"]}"'
    answers: list[httpx.Response] = []

    def long_poll() -> None:
        r = api.get(
            f"/deployments/{name}/project/current",
            headers={"If-None-Match": etag},
            params={"wait": 20},
        )
        answers.append(r)

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)
    # A DAG deploy keeps the project version: the request goes on waiting.
    api.deploy_files(name, {"a.py": b"two"})
    time.sleep(0.5)
    assert answers == []
    new = api.deploy_files(name, {"requirements.txt": b"two\n"}, "project").json()
    # The deploy wakes the poll: an answer within 10 s came neither from the 20 s wait running
    # out (that is a 304) nor from PostgreSQL's 15 s re-check for lost notifications.
    waiter.join(10)
    (response,) = answers
    assert response.status_code == 200, response.text
    assert response.json()["version"] == new["project_version"]

    start = time.monotonic()
    unchanged = api.get(
        f"/deployments/{name}/project/current",
        headers={"If-None-Match": f'"{new["project_version"]}"'},
        params={"wait": 1.5},
    )
    assert unchanged.status_code == 304
    assert 1.4 <= time.monotonic() - start < 30  # it waited, and it ended


# --------------------------------------------------------------------------- reports


def test_an_agent_report_is_recorded_and_updated(api: Api) -> None:
    name = api.create_deployment()["name"]
    version = full_deploy(api, name, "r")["project_version"]
    first = put_agent(api, name, "af-1-0a1b2c", state="building", target_version=version)
    assert first["id"] == "af-1-0a1b2c" and first["deployment"] == name
    assert (first["state"], first["target_version"], first["project_version"]) == (
        "building",
        version,
        "",
    )
    assert first["components"] == ["standalone"] and first["active"] is True
    assert first["first_seen_at"] == first["last_seen_at"]
    time.sleep(1.1)  # times have whole seconds
    second = put_agent(
        api,
        name,
        "af-1-0a1b2c",
        state="running",
        project_version=version,
        airflow_version="3.3.2",
        home="/srv/agent",
    )
    assert second["first_seen_at"] == first["first_seen_at"]
    assert second["last_seen_at"] > first["last_seen_at"]
    assert (second["state"], second["project_version"], second["target_version"]) == (
        "running",
        version,
        "",
    )
    assert (second["airflow_version"], second["home"]) == ("3.3.2", "/srv/agent")
    worker = put_agent(api, name, "af-2.example:9f8e", host="af-2", components=["celery-worker"])

    listed = api.get(f"/deployments/{name}/agents").json()
    assert [agent["id"] for agent in listed] == [worker["id"], "af-1-0a1b2c"]
    shown = api.get(f"/deployments/{name}").json()["agents"]
    assert shown == listed
    other = api.create_deployment()["name"]
    everywhere = {d["name"]: d for d in api.get("/deployments", params={"limit": 1000}).json()}
    assert everywhere[name]["agents"] == listed
    assert api.get(f"/deployments/{other}/agents").json() == []
    assert everywhere[other]["agents"] == []


def test_concurrent_first_reports_of_one_agent_make_one_agent(api: Api) -> None:
    name = api.create_deployment()["name"]
    path = f"/deployments/{name}/agents/af-1"
    answers: list[int] = []

    def put(i: int) -> None:
        answers.append(api.with_token(api.token).put(path, json=report(home=str(i))).status_code)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [200] * 8
    (agent,) = api.get(f"/deployments/{name}/agents").json()
    assert agent["id"] == "af-1" and agent["home"] in {str(i) for i in range(8)}


def test_who_may_report_an_agent(api: Api) -> None:
    name = api.create_deployment()["name"]
    other = api.create_deployment()["name"]
    path = f"/deployments/{name}/agents/af-1"
    viewer = api.with_token(api.create_token("viewer", deployment=name))
    assert viewer.put(path, json=report()).status_code == 200
    unbound = api.with_token(api.create_token("viewer"))
    assert unbound.put(path, json=report(state="running")).status_code == 200
    elsewhere = api.with_token(api.create_token("viewer", deployment=other))
    assert_error(elsewhere.put(path, json=report()), 403, "forbidden")
    assert_error(elsewhere.get(f"/deployments/{name}/agents"), 403, "forbidden")
    assert_error(api.with_token(None).put(path, json=report()), 401)
    # Reporting is all a viewer token may write: it still cannot deploy.
    blob = b"a viewer's blob"
    put_blob = viewer.put(f"/blobs/{sha256(blob)}", content=blob)
    assert_error(put_blob, 403, "role_required")
    assert_error(viewer.post(f"/deployments/{name}/deploys", json={"kind": "dags"}), 403)
    assert [agent["state"] for agent in api.get(f"/deployments/{name}/agents").json()] == [
        "running"
    ]


@pytest.mark.parametrize(
    ("agent_id", "fields"),
    [
        ("-starts-with-a-dash", {}),
        ("x" * 201, {}),
        ("has space", {}),
        ("af-1", {"components": []}),
        ("af-1", {"components": ["webserver"]}),
        ("af-1", {"state": "sleeping"}),
        ("af-1", {"host": ""}),
        ("af-1", {"project_version": "v1"}),
        ("af-1", {"target_version": "sha256-" + "0" * 63}),
        ("af-1", {"unknown": 1}),
    ],
)
def test_a_bad_report_is_refused(api: Api, agent_id: str, fields: dict[str, Any]) -> None:
    name = api.create_deployment()["name"]
    r = api.put(f"/deployments/{name}/agents/{agent_id}", json=report(**fields))
    assert_error(r, 422, "invalid")
    assert api.get(f"/deployments/{name}/agents").json() == []


def test_reports_to_an_unknown_deployment_are_404(api: Api) -> None:
    assert_error(api.put("/deployments/nope-nope/agents/af-1", json=report()), 404)
    assert_error(api.get("/deployments/nope-nope/agents"), 404, "deployment_not_found")


def test_deleting_a_deployment_deletes_its_agents(api: Api) -> None:
    name = api.create_deployment()["name"]
    put_agent(api, name, "af-1")
    assert api.delete(f"/deployments/{name}").status_code == 204
    api.create_deployment(name)
    assert api.get(f"/deployments/{name}/agents").json() == []


# --------------------------------------------------------------------------- deploy status


def test_a_project_deploy_waits_for_every_active_agent(api: Api) -> None:
    name = api.create_deployment()["name"]
    deploy = full_deploy(api, name, "w")
    version = deploy["project_version"]
    alone = status(api, deploy["id"])
    assert (alone["state"], alone["done"], alone["project_changed"]) == ("no_agent", True, True)
    assert alone["project_version"] == version and alone["agents"] == []
    assert f"no agent of deployment {name} has reported in the last minute" in alone["detail"]

    put_agent(api, name, "af-1", state="building", target_version=version)
    put_agent(api, name, "af-2", host="af-2.example", state="waiting")
    building = status(api, deploy["id"])
    assert (building["state"], building["done"]) == ("applying", False)
    assert "0 of 2 agent(s)" in building["detail"]
    assert sorted(agent["id"] for agent in building["agents"]) == ["af-1", "af-2"]

    put_agent(api, name, "af-1", state="running", project_version=version)
    put_agent(api, name, "af-2", host="af-2.example", state="starting", project_version=version)
    starting = status(api, deploy["id"])
    assert starting["state"] == "applying"
    assert "1 of 2 agent(s)" in starting["detail"] and "af-2.example" in starting["detail"]

    put_agent(api, name, "af-2", host="af-2.example", state="running", project_version=version)
    # Every agent runs it: the DAG check decides, here "no Airflow URL".
    done = status(api, deploy["id"])
    assert (done["state"], done["project_changed"]) == ("no_airflow", True)
    assert [agent["state"] for agent in done["agents"]] == ["running", "running"]

    # A DAG-only deploy leaves the project as it was: agents do not matter.
    dags_only = api.deploy_files(name, {"a.py": b"new dag"}).json()
    put_agent(api, name, "af-1", state="building", project_version=version)
    plain = status(api, dags_only["id"])
    assert (plain["state"], plain["project_changed"]) == ("no_airflow", False)


def test_an_agent_that_fails_the_version_fails_the_deploy(api: Api) -> None:
    name = api.create_deployment()["name"]
    old = full_deploy(api, name, "old")["project_version"]
    put_agent(api, name, "af-1", state="running", project_version=old)
    new = full_deploy(api, name, "new")
    # uv's own message, verbatim (with its box-drawing characters).
    error = (
        "Resolving requirements\n"
        "  \u00d7 No solution found when resolving dependencies:\n"
        "  \u2570\u2500\u25b6 Because nope-pkg was not found, requirements are unsatisfiable.\n"
    )
    put_agent(
        api,
        name,
        "af-1",
        state="failed",
        project_version=old,
        target_version=new["project_version"],
        error=error,
    )
    failed = status(api, new["id"])
    assert (failed["state"], failed["done"]) == ("failed", True)
    assert "agent af-1 on af-1.example failed to apply project version" in failed["detail"]
    assert failed["detail"].endswith("requirements are unsatisfiable.")
    assert failed["agents"][0]["error"] == error
    # The deploy before it still runs on that agent.
    assert status(api, api.deploys(name)[1]["id"])["state"] == "no_airflow"


def test_first_deploys_and_newer_deploys(api: Api) -> None:
    name = api.create_deployment()["name"]
    # A first deploy without project files changes no project: no agent needed.
    first = api.deploy_files(name, {"a.py": b"only dags " + name.encode()}).json()
    assert first["project_version"] == EMPTY_VERSION
    assert status(api, first["id"])["project_changed"] is False
    second = full_deploy(api, name, "2")
    third = full_deploy(api, name, "3")
    put_agent(api, name, "af-1", state="building", target_version=third["project_version"])
    superseded = status(api, second["id"])
    assert (superseded["state"], superseded["done"]) == ("superseded", True)
    assert status(api, third["id"])["state"] == "applying"


def test_agents_silent_for_a_minute_do_not_count(api: Api, server: Server) -> None:
    from sqlalchemy import create_engine, text

    name = api.create_deployment(airflow_url=f"http://127.0.0.1:{free_port()}")["name"]
    deploy = full_deploy(api, name, "s")
    version = deploy["project_version"]
    put_agent(api, name, "gone", state="building", target_version=version)
    put_agent(api, name, "here", state="running", project_version=version)
    assert status(api, deploy["id"])["state"] == "applying"
    engine = create_engine(server.database_url or f"sqlite:///{server.home / 'dagship.db'}")
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=61)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE agents SET last_seen_at = :at WHERE id = 'gone'"), {"at": long_ago}
            )
    finally:
        engine.dispose()
    listed = {agent["id"]: agent for agent in api.get(f"/deployments/{name}/agents").json()}
    assert (listed["gone"]["active"], listed["here"]["active"]) == (False, True)
    # The silent one no longer holds the deploy: on to Airflow (unreachable here).
    waiting = status(api, deploy["id"])
    assert (waiting["state"], waiting["reachable"]) == ("waiting", False)
    assert [agent["id"] for agent in waiting["agents"]] == ["here"]


def test_the_client_follows_the_project_and_reports_as_an_agent_does(
    api: Api, server: Server
) -> None:
    from dagship.client.api import ApiClient
    from dagship.core.schemas import AgentReport, ProjectCurrentOut
    from dagship.core.vocabulary import AgentState, Component

    name = api.create_deployment()["name"]
    version = full_deploy(api, name, "client")["project_version"]
    token = api.create_token("viewer", deployment=name)
    with ApiClient(server.url, token) as client:
        current = client.current_project(name)
        assert isinstance(current, ProjectCurrentOut) and current.version == version
        assert [file.path for file in current.files] == ["requirements.txt"]
        assert client.current_project(name, etag=version, wait=0.2) is None
        report = AgentReport(
            host="af-1.example",
            components=[Component.SCHEDULER, Component.TRIGGERER],
            state=AgentState.RUNNING,
            project_version=version,
        )
        # Ids may hold a slash (AGENT_ID): the route takes the rest of the path.
        out = client.report_agent(name, "af-1.example/3f9c", report)
        assert (out.id, out.host, out.state, out.active) == (
            "af-1.example/3f9c",
            "af-1.example",
            AgentState.RUNNING,
            True,
        )
        assert [agent.id for agent in client.list_agents(name)] == ["af-1.example/3f9c"]
