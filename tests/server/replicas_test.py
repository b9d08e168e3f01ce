"""Two server processes on one PostgreSQL database and one blob store behave as one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ServerFactory
from tests.helpers import Api


def test_concurrent_deploys_split_across_two_servers_get_contiguous_numbers(
    make_server: ServerFactory,
) -> None:
    first = make_server("postgresql")
    # A second process on the same database and home (so the same store and admin token).
    second = first.replica()
    try:
        second.start()
        apis = [first.api(), Api(second.url, first.admin_token)]
        name = apis[0].create_deployment()["name"]

        def deploy(number: int) -> int:
            api = apis[number % 2]
            r = api.deploy_files(name, {"a.py": f"# deploy {number}\n".encode()})
            assert r.status_code == 201, r.text
            return int(r.json()["seq"])

        with ThreadPoolExecutor(max_workers=20) as pool:
            seqs = sorted(pool.map(deploy, range(20)))
        assert seqs == list(range(1, 21))
        for api in apis:
            listed = api.get(f"/deployments/{name}/deploys", params={"limit": 100}).json()
            assert sorted(item["seq"] for item in listed) == seqs
            assert api.get(f"/deployments/{name}").json()["current"]["seq"] == 20
    finally:
        second.stop()
