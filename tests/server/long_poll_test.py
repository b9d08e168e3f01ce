"""Long polls: woken by a deploy in any server process, and reading nothing while they wait."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import ServerFactory
from tests.helpers import Api, Server

WAIT = 30


async def _hold(
    url: str, token: str, name: str, version: str, count: int, wait: float, **params: Any
) -> list[Any]:
    """``count`` long polls of ``name``'s DAG version, each on its own connection."""
    headers = {"Authorization": f"Bearer {token}", "If-None-Match": f'"{version}"'}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=90) as http:
        polls = [
            http.get(f"/api/v1/deployments/{name}/dags/current", params={"wait": wait, **params})
            for _ in range(count)
        ]
        return list(await asyncio.gather(*polls))


def _stats(api: Api) -> dict[str, int]:
    r = api.get("/server/stats")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait_until_held(api: Api, count: int) -> dict[str, int]:
    deadline = time.monotonic() + 60
    while (stats := _stats(api))["long_polls_waiting"] < count:
        assert time.monotonic() < deadline, f"only {stats} held"
        time.sleep(0.2)
    return stats


def _hold_in_thread(
    srv: Server, name: str, version: str, count: int, wait: float = WAIT, **params: Any
) -> Future[list[httpx.Response]]:
    """Hold the polls from another thread; the future holds their answers."""
    pool = ThreadPoolExecutor(1)
    coroutine = _hold(srv.url, srv.admin_token, name, version, count, wait, **params)
    future = pool.submit(asyncio.run, coroutine)
    pool.shutdown(wait=False)
    return future


def test_a_deploy_wakes_every_held_poll(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    old = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
    other = api.create_deployment()["name"]
    api.deploy_files(other, {"a.py": b"other"})
    before = _stats(api)["long_polls_waiting"]
    polls = _hold_in_thread(server, name, old, 20)
    _wait_until_held(api, before + 20)

    # A deploy of another deployment, and a project deploy here, change nothing they follow.
    api.deploy_files(other, {"a.py": b"other 2"})
    api.deploy_files(name, {"requirements.txt": b"x\n"}, "project")
    time.sleep(1.5)
    assert not polls.done()
    new = api.deploy_files(name, {"a.py": b"two"}).json()
    answers = polls.result(timeout=WAIT)
    assert [r.status_code for r in answers] == [200] * 20
    assert {r.json()["version"] for r in answers} == {new["dags_version"]}
    assert {r.headers["etag"] for r in answers} == {f'"{new["dags_version"]}"'}


def test_idle_polls_read_nothing(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    version = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
    # What the stats request itself costs (authentication), measured here, and the watcher's
    # own reads, which do not depend on how many polls wait.
    first, second = _stats(api), _stats(api)
    per_stats = second["database_statements"] - first["database_statements"]
    polls = _hold_in_thread(server, name, version, 50)
    held = _wait_until_held(api, second["long_polls_waiting"] + 50)
    time.sleep(3)
    later = _stats(api)
    statements = later["database_statements"] - held["database_statements"]
    checks = later["deployment_checks"] - held["deployment_checks"]
    # A watcher read is two or three statements (SQLite's BEGIN, the deployments, the revoked
    # tokens), and one may straddle a stats request. Before, each of the 50 polls read the
    # database each second: 150 reads (300 statements) in these 3 s.
    assert statements <= per_stats + 3 * (checks + 1), (statements, per_stats, checks)
    api.deploy_files(name, {"a.py": b"two"})
    assert {r.status_code for r in polls.result(timeout=WAIT)} == {200}


def test_a_deploy_through_another_server_process_wakes_a_poll(
    make_server: ServerFactory,
) -> None:
    first = make_server("postgresql")
    # A second process on the same database and home (so the same store and admin token).
    second = first.replica()
    try:
        second.start()
        api = first.api()
        name = api.create_deployment()["name"]
        old = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
        # The first process read the deployments at this deploy, and reads them again
        # (without a notification) 15 s after its last read: polls that wait 10 s end with
        # a 304 unless the other process's NOTIFY wakes them.
        polls = _hold_in_thread(first, name, old, 5, wait=10)
        _wait_until_held(api, 5)
        new = second.api().deploy_files(name, {"a.py": b"two"}).json()
        answers = polls.result(timeout=WAIT)
        assert [r.status_code for r in answers] == [200] * 5
        assert {r.json()["version"] for r in answers} == {new["dags_version"]}
    finally:
        second.stop()


def test_deleting_the_deployment_ends_its_held_polls_with_404(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    version = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
    before = _stats(api)["long_polls_waiting"]
    polls = _hold_in_thread(server, name, version, 3)
    _wait_until_held(api, before + 3)
    assert api.delete(f"/deployments/{name}").status_code == 204
    answers = polls.result(timeout=WAIT)
    assert [r.status_code for r in answers] == [404] * 3
    assert {r.json()["code"] for r in answers} == {"deployment_not_found"}


def test_renewed_polls_read_nothing(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    version = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
    first, second = _stats(api), _stats(api)
    per_stats = second["database_statements"] - first["database_statements"]
    # Every DAG bundle renews its held poll with the version it has: 20 bundles, 3 times.
    for _ in range(3):
        answers = asyncio.run(_hold(server.url, server.admin_token, name, version, 20, 0.3))
        assert [r.status_code for r in answers] == [304] * 20
    later = _stats(api)
    statements = later["database_statements"] - second["database_statements"]
    checks = later["deployment_checks"] - second["deployment_checks"]
    # The first poll reads the current version (a few statements); the others recall it. A
    # watcher read is up to three statements (SQLite's BEGIN, the deployments, the revoked
    # tokens). Before, each of the 60 polls read the deployment and its current deploy.
    assert statements <= per_stats + 3 * (checks + 1) + 4, (statements, per_stats, checks)
