"""Deployments, previews and tokens are listed a page at a time (``limit``, ``after`` and a
``Link`` header to the next page), over HTTP on SQLite and PostgreSQL; the client reads them
to the end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dagship.client.api import ApiClient
from tests.conftest import ServerFactory
from tests.helpers import Api, Server, assert_error, unique


def walk(api: Api, path: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every item of ``path``, following the Link headers; and how many pages it took."""
    items: list[dict[str, Any]] = []
    r = api.get(path, params={"limit": limit})
    pages = 1
    while True:
        assert r.status_code == 200, r.text
        assert len(r.json()) <= limit
        items += r.json()
        following = r.links.get("next", {}).get("url")
        if following is None:
            return items, pages
        assert following.startswith(f"/api/v1{path}?")
        r = api.http.get(api.url + following)
        pages += 1


@pytest.mark.parametrize(
    ("path", "key"), [("/deployments", "name"), ("/previews", "name"), ("/tokens", "id")]
)
def test_pages_cover_the_list_once_in_order(api: Api, path: str, key: str) -> None:
    source = api.create_deployment()["name"]
    for _ in range(3):
        api.create_deployment()
        api.create_token("viewer")
        assert api.post("/previews", json={"source": source, "branch": unique("b")}).is_success
    whole = api.get(path, params={"limit": 1000}).json()
    assert "link" not in api.get(path, params={"limit": 1000}).headers
    paged, pages = walk(api, path, 2)
    assert [item[key] for item in paged] == [item[key] for item in whole]
    assert pages == (len(whole) + 1) // 2
    if key == "name":
        assert [item["name"] for item in whole] == sorted(item["name"] for item in whole)
    # The cursor is the last item of a page: the next one starts right after it.
    middle = whole[len(whole) // 2][key]
    after = api.get(path, params={"limit": 1000, "after": middle}).json()
    assert [item[key] for item in after] == [item[key] for item in whole][len(whole) // 2 + 1 :]


@pytest.mark.parametrize("path", ["/deployments", "/previews", "/tokens"])
def test_limits_are_bounded(api: Api, path: str) -> None:
    for limit in (0, 1001, "x"):
        assert_error(api.get(path, params={"limit": limit}), 422, "invalid")
    assert_error(api.get(path, params={"after": ""}), 422, "invalid")


def test_the_default_page_is_bounded(make_server: ServerFactory) -> None:
    api = make_server().api()
    # Without a limit, a page holds 100 at most: 101 deployments make a second page.
    for _ in range(101):
        api.create_deployment()
    r = api.get("/deployments")
    assert len(r.json()) == 100 and 'rel="next"' in r.headers["link"]
    assert len(api.get("/deployments", params={"limit": 1000}).json()) == 101


def test_a_token_cursor_must_name_a_token(api: Api) -> None:
    r = api.get("/tokens", params={"after": "tok_nosuchtoken"})
    body = assert_error(r, 422, "bad_cursor")
    assert body["after"] == "tok_nosuchtoken"


def test_a_bound_token_pages_through_its_own_deployment_only(api: Api) -> None:
    name = api.create_deployment()["name"]
    bound = api.with_token(api.create_token("admin", name))
    for _ in range(2):
        bound.post("/tokens", json={"role": "viewer", "deployment": name})
    tokens, _ = walk(bound, "/tokens", 1)
    assert len(tokens) == 3 and {t["deployment"] for t in tokens} == {name}
    assert [d["name"] for d in walk(bound, "/deployments", 1)[0]] == [name]


def test_the_client_reads_every_page(server: Server, api: Api) -> None:
    for _ in range(3):
        api.create_deployment()
        api.create_token("viewer")
    seen: list[httpx.Request] = []
    with ApiClient(server.url, server.admin_token) as client:
        client._http.event_hooks["request"].append(seen.append)
        listed = [d.name for d in client.list_deployments(page_size=2)]
        tokens = [t.id for t in client.list_tokens(page_size=2)]
        previews = client.list_previews(page_size=2)
    assert listed == [d["name"] for d in api.get("/deployments", params={"limit": 1000}).json()]
    assert tokens == [t["id"] for t in api.get("/tokens", params={"limit": 1000}).json()]
    assert len(previews) == len(api.get("/previews", params={"limit": 1000}).json())
    assert sum(r.url.path == "/api/v1/deployments" for r in seen) == (len(listed) + 1) // 2
