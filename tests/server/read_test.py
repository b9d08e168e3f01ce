"""The read API Airflow uses: current DAG version with ETag, manifests, blobs."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from tests.helpers import Api, assert_error, entry, sha256, unique


def test_dags_current_with_etag(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    err = assert_error(api.get(f"/deployments/{name}/dags/current"), 404, "no_deploys")
    assert err["deployment"] == name
    files = {"a.py": b"alpha", "pkg/b.py": b"beta"}
    d1 = api.deploy_files(name, files).json()

    r = api.get(f"/deployments/{name}/dags/current")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["deployment"], body["version"], body["deploy_id"], body["seq"]) == (
        name,
        d1["dags_version"],
        d1["id"],
        1,
    )
    assert body["files"] == [entry(p, d) for p, d in sorted(files.items())]
    etag = r.headers["etag"]
    assert etag == f'"{d1["dags_version"]}"'

    cached = api.get(f"/deployments/{name}/dags/current", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    other = api.get(
        f"/deployments/{name}/dags/current", headers={"If-None-Match": '"sha256-' + "0" * 64 + '"'}
    )
    assert other.status_code == 200

    # A project deploy keeps the DAG version: the ETag still matches.
    api.deploy_files(name, {"requirements.txt": b"x\n"}, "project")
    still = api.get(f"/deployments/{name}/dags/current", headers={"If-None-Match": etag})
    assert still.status_code == 304

    d3 = api.deploy_files(name, {"a.py": b"alpha 2"}).json()
    changed = api.get(f"/deployments/{name}/dags/current", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["version"] == d3["dags_version"]
    assert changed.json()["seq"] == 3
    assert changed.headers["etag"] == f'"{d3["dags_version"]}"'


def test_dags_current_waits_for_the_next_dags_version(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    etag = f'"{api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]}"'
    answers: list[httpx.Response] = []

    def long_poll() -> None:
        r = api.get(
            f"/deployments/{name}/dags/current",
            headers={"If-None-Match": etag},
            params={"wait": 20},
        )
        answers.append(r)

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)
    # A project deploy keeps the DAG version: the request goes on waiting.
    api.deploy_files(name, {"requirements.txt": b"x\n"}, "project")
    time.sleep(0.5)
    assert answers == []
    new = api.deploy_files(name, {"a.py": b"two"}).json()
    # The deploy wakes the poll: an answer within 10 s came neither from the 20 s wait running
    # out (that is a 304) nor from PostgreSQL's 15 s re-check for lost notifications.
    waiter.join(10)
    (response,) = answers
    assert response.status_code == 200, response.text
    assert response.json()["version"] == new["dags_version"]


def test_dags_current_wait_ends_with_304_when_nothing_changes(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    etag = f'"{api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]}"'
    start = time.monotonic()
    r = api.get(
        f"/deployments/{name}/dags/current", headers={"If-None-Match": etag}, params={"wait": 1.5}
    )
    assert r.status_code == 304
    assert 1.4 <= time.monotonic() - start < 30  # it waited, and it ended
    for bad in ("-1", "61", "soon"):
        assert_error(
            api.get(f"/deployments/{name}/dags/current", params={"wait": bad}), 422, "invalid"
        )


def test_dags_current_of_unknown_deployment_is_404(api: Api) -> None:
    assert_error(api.get("/deployments/nope-nope/dags/current"), 404, "deployment_not_found")


def test_manifest_and_blob_routes(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    dags = {"z.py": b"zed", "a/b.py": b"bee"}
    project = {"include/q.sql": b"select 1", "requirements.txt": b"x"}
    r = api.deploy_files(name, dags, "full", project_files=project)
    assert r.status_code == 201, r.text
    d = r.json()
    for version, files in ((d["dags_version"], dags), (d["project_version"], project)):
        r = api.get(f"/manifests/{version}")
        assert r.status_code == 200, r.text
        assert r.json()["version"] == version
        assert r.json()["files"] == [entry(p, data) for p, data in sorted(files.items())]
        for f in r.json()["files"]:
            blob = api.get(f"/blobs/{f['sha256']}")
            assert blob.content == files[f["path"]]
    assert_error(api.get("/manifests/sha256-" + "1" * 64), 404, "not_found")
    assert api.get("/manifests/not-a-version").status_code in (404, 422)


def test_many_bundles_download_one_blob_at_once(api: Api) -> None:
    """A deploy wakes every DAG bundle following the deployment, and each fetches the changed
    file at once. More downloads than the server's threads and database connections must all
    be answered: a download holding its database connection while its body waited for a
    thread once left them all waiting for the pool's timeout, then failing."""
    name = unique()
    api.create_deployment(name)
    data = b"# the changed DAG file\n"
    assert api.deploy_files(name, {"dag.py": data}).status_code == 201
    url = f"{api.url}/api/v1/blobs/{sha256(data)}"
    headers = {"Authorization": f"Bearer {api.token}"}

    async def download_all(count: int) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as http:
            return await asyncio.gather(*(http.get(url) for _ in range(count)))

    # Above the server's 40 threads and 30 pooled connections (server/db/engine.py) combined.
    answers = asyncio.run(download_all(120))
    assert [(r.status_code, r.content) for r in answers] == [(200, data)] * 120
