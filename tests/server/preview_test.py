"""Preview deployments over HTTP: create, list, delete, idle clean-up (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dagship.core.naming import preview_name
from tests.conftest import ServerFactory
from tests.helpers import BACKENDS, Api, Server, assert_error, unique


def source(api: Api, **fields: Any) -> tuple[str, dict[str, Any]]:
    """A deployment with one full deploy of content unique to it."""
    name = unique("dev")
    api.create_deployment(name, **fields)
    r = api.deploy_files(
        name, {"etl.py": f"# {name}\n".encode()}, "full", project_files={"req.txt": name.encode()}
    )
    assert r.status_code == 201, r.text
    return name, dict(r.json())


def branch() -> str:
    return f"feature/ABC-{unique('x')[2:]} fix"


def create(api: Api, src: str, br: str, **fields: Any) -> Any:
    return api.post("/previews", json={"source": src, "branch": br, **fields})


def test_preview_lifecycle(server: Server, api: Api) -> None:
    dev, deployed = source(
        api, description="dev env", dag_deploys=False, airflow_url="http://airflow-dev:8080"
    )
    br = branch()
    name = preview_name(br)
    assert name.startswith("preview-feature-abc-") and name.endswith("-fix")
    blobs_before = server.blob_count()

    r = create(api, dev, br)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["created"] is True
    preview, first = body["preview"], body["deploy"]
    assert (preview["name"], preview["source"], preview["branch"]) == (name, dev, br)
    # Settings are copied, the source's Airflow URL too (docs/promote-preview.md).
    assert (preview["airflow_url"], preview["airflow_url_from"]) == (
        "http://airflow-dev:8080",
        "source",
    )
    info = api.get(f"/deployments/{name}").json()
    assert info["dag_deploys"] is False and info["airflow_bundle"] == f"dagship-{name}"
    assert (info["preview_source"], info["preview_branch"]) == (dev, br)
    assert (first["seq"], first["origin"], first["kind"]) == (1, "promote", "full")
    assert (first["dags_version"], first["project_version"]) == (
        deployed["dags_version"],
        deployed["project_version"],
    )
    assert (first["source_deployment"], first["source_seq"]) == (dev, 1)
    assert server.blob_count() == blobs_before

    # Again for the same branch: nothing changes, and the answer says so.
    again = create(api, dev, br)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False and again.json()["deploy"] is None
    assert api.deploy_count(name) == 1

    listed = {p["name"]: p for p in api.get("/previews", params={"limit": 1000}).json()}
    assert listed[name]["branch"] == br and listed[name]["current"]["id"] == first["id"]
    assert listed[name]["last_activity_at"] >= listed[name]["created_at"]
    assert dev not in listed

    r = api.deploy_files(name, {"etl.py": b"# preview change " + name.encode()}, "full")
    assert r.status_code == 201, r.text
    listed = {p["name"]: p for p in api.get("/previews", params={"limit": 1000}).json()}
    assert listed[name]["last_activity_at"] == r.json()["created_at"]

    r = api.delete(f"/previews/{name}")
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": True, "name": name, "branch": br}
    assert_error(api.get(f"/deployments/{name}"), 404)
    err = assert_error(api.delete(f"/previews/{name}"), 404, "preview_not_found")
    assert "no preview" in err["detail"]
    # The source is untouched.
    assert api.get(f"/deployments/{dev}").json()["current"]["id"] == deployed["id"]


def test_preview_with_its_own_airflow_and_of_a_source_without_deploys(api: Api) -> None:
    empty = unique("dev")
    api.create_deployment(empty)
    r = create(api, empty, branch(), airflow_url="http://airflow-preview:8080/")
    assert r.status_code == 201, r.text
    assert r.json()["deploy"] is None
    assert r.json()["preview"]["airflow_url"] == "http://airflow-preview:8080"
    assert r.json()["preview"]["current"] is None


def test_name_collisions_and_bad_sources_are_refused(api: Api) -> None:
    dev, _ = source(api)
    other, _ = source(api)
    suffix = unique("b")
    assert create(api, dev, f"feature/{suffix}").status_code == 201
    name = preview_name(f"feature/{suffix}")
    # Another branch with the same name once sanitised.
    err = assert_error(create(api, dev, f"Feature--{suffix}"), 409, "preview_of_other_branch")
    assert f"feature/{suffix}" in err["detail"]
    assert (err["preview"], err["branch"]) == (name, f"feature/{suffix}")
    # The same branch from another source.
    err = assert_error(create(api, other, f"feature/{suffix}"), 409, "preview_of_other_source")
    assert f"made from {dev}, not {other}" in err["detail"]
    assert (err["preview"], err["branch"], err["source"]) == (name, f"feature/{suffix}", dev)
    # A regular deployment that happens to have the name.
    plain = unique("x")
    api.create_deployment(f"preview-{plain}")
    err = assert_error(create(api, dev, plain), 409, "preview_name_taken")
    assert "not a preview" in err["detail"] and err["deployment"] == f"preview-{plain}"
    err = assert_error(api.delete(f"/previews/preview-{plain}"), 409, "not_a_preview")
    assert "not a preview" in err["detail"] and err["deployment"] == f"preview-{plain}"
    assert api.get(f"/deployments/preview-{plain}").status_code == 200
    # A preview of a preview, an unknown source, a branch with no letters.
    err = assert_error(create(api, name, branch()), 422, "source_is_preview")
    assert "itself a preview" in err["detail"]
    assert (err["deployment"], err["preview_source"]) == (name, dev)
    assert_error(create(api, "no-such-dev", branch()), 404, "deployment_not_found")
    err = assert_error(create(api, dev, "///"), 422)
    assert "letters or digits" in err["detail"]


def test_only_unbound_operators_manage_previews(api: Api) -> None:
    dev, _ = source(api)
    br = branch()
    author = api.with_token(api.create_token("dag-author"))
    err = assert_error(create(author, dev, br), 403, "role_required")
    assert "managing previews need operator" in err["detail"]
    bound = api.with_token(api.create_token("operator", dev))
    err = assert_error(create(bound, dev, br), 403, "forbidden")
    assert "not bound to a deployment" in err["detail"]
    assert api.get(f"/deployments/{preview_name(br)}").status_code == 404
    operator = api.with_token(api.create_token("operator"))
    assert create(operator, dev, br).status_code == 201
    assert_error(author.delete(f"/previews/{preview_name(br)}"), 403)
    assert_error(author.post("/previews/cleanup", json={"idle_seconds": 1}), 403)
    assert operator.delete(f"/previews/{preview_name(br)}").status_code == 200


def test_long_branch_names_stay_unique_and_valid(api: Api) -> None:
    dev, _ = source(api)
    stem = "release/" + "very-long-branch-name-" * 4
    names = []
    for end in ("a", "b"):
        r = create(api, dev, stem + end)
        assert r.status_code == 201, r.text
        names.append(r.json()["preview"]["name"])
    assert names[0] != names[1] and all(len(n) == 63 for n in names)


@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_previews_are_deleted_by_the_server(make_server: ServerFactory, backend: str) -> None:
    srv = make_server(
        backend,
        env={"DAGSHIP_PREVIEW_IDLE_TIMEOUT": "5s", "DAGSHIP_PREVIEW_SWEEP_INTERVAL": "0.2"},
    )
    api = srv.api()
    dev, _ = source(api)
    r = create(api, dev, "feature/idle")
    assert r.status_code == 201, r.text
    name = r.json()["preview"]["name"]
    # Activity keeps it: a deploy every second for seven seconds, longer than the idle timeout
    # (which leaves a busy machine seconds per deploy before the preview counts as idle).
    for i in range(7):
        time.sleep(1)
        assert api.deploy_files(name, {"a.py": f"{name} {i}".encode()}).status_code == 201
        assert api.get(f"/deployments/{name}").status_code == 200
    deadline = time.monotonic() + 20
    while api.get(f"/deployments/{name}").status_code != 404:
        assert time.monotonic() < deadline, "the idle preview was not deleted"
        time.sleep(0.1)
    assert api.get("/previews").json() == []
    assert f"deleted preview {name}: idle for more than 5 seconds" in srv.log()
    # Regular deployments are never swept, however idle.
    assert api.get(f"/deployments/{dev}").status_code == 200


def test_two_servers_on_one_database_delete_each_idle_preview_once(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Servers sharing a PostgreSQL database each run the sweeper; every idle preview is
    deleted by one of them, once, and neither logs an error."""
    env = {"DAGSHIP_PREVIEW_IDLE_TIMEOUT": "1s", "DAGSHIP_PREVIEW_SWEEP_INTERVAL": "0.1"}
    first = make_server("postgresql", env=env)
    second = Server(tmp_path / "second-home", "sqlite", env)
    second.backend, second.database_url = "postgresql", first.database_url
    try:
        second.start()
        api = first.api()
        dev, _ = source(api)
        names = [create(api, dev, branch()).json()["preview"]["name"] for _ in range(6)]
        deadline = time.monotonic() + 30
        while api.get("/previews").json():
            assert time.monotonic() < deadline, "idle previews were not deleted"
            time.sleep(0.2)
        logs = first.log() + second.log()
        for name in names:
            assert logs.count(f"deleted preview {name}:") == 1, logs
        assert "Traceback" not in logs and "failed" not in logs, logs
    finally:
        second.stop()


def test_explicit_cleanup(make_server: ServerFactory) -> None:
    srv = make_server("sqlite", env={"DAGSHIP_PREVIEW_IDLE_TIMEOUT": "off"})
    api = srv.api()
    dev, _ = source(api)
    old = create(api, dev, "feature/old").json()["preview"]["name"]
    err = assert_error(api.post("/previews/cleanup", json={}), 422, "idle_seconds_required")
    assert "idle_seconds" in err["detail"]
    time.sleep(1.2)
    fresh = create(api, dev, "feature/fresh").json()["preview"]["name"]
    r = api.post("/previews/cleanup", json={"idle_seconds": 1})
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["deleted"]] == [old]
    assert [p["name"] for p in api.get("/previews").json()] == [fresh]
    r = api.post("/previews/cleanup", json={"idle_seconds": 3600})
    assert r.json() == {"idle_seconds": 3600, "deleted": []}


def test_a_bad_idle_timeout_stops_the_server_with_a_clear_message(
    make_server: ServerFactory,
) -> None:
    srv = make_server("sqlite", env={"DAGSHIP_PREVIEW_IDLE_TIMEOUT": "soon"}, start=False)
    with pytest.raises(RuntimeError) as failed:
        srv.start()
    assert "DAGSHIP_PREVIEW_IDLE_TIMEOUT: 'soon' is not a duration" in str(failed.value)
    assert "7d" in str(failed.value)


def test_concurrent_creates_of_one_preview_make_one(api: Api) -> None:
    dev, _ = source(api)
    br = branch()

    def attempt(_: int) -> tuple[int, bool]:
        r = create(api.with_token(api.token), dev, br)
        return r.status_code, bool(r.json().get("created"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert sorted(results) == [(200, False)] * 5 + [(201, True)], results
    assert api.deploy_count(preview_name(br)) == 1
