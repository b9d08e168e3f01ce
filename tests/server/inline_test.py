"""Inline blobs: the current-DAG-version answer carries the files the asker's version lacks."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.helpers import Api, Server, sha256
from tests.server.long_poll_test import _hold_in_thread, _stats, _wait_until_held

MIB = 1024 * 1024


def _current(api: Api, name: str, have: str | None, **params: Any) -> httpx.Response:
    headers = {"If-None-Match": f'"{have}"'} if have else {}
    return api.get(f"/deployments/{name}/dags/current", headers=headers, params=params)


def _inline(answer: httpx.Response) -> dict[str, bytes]:
    assert answer.status_code == 200, answer.text
    return {blob["sha256"]: base64.b64decode(blob["content"]) for blob in answer.json()["blobs"]}


def test_the_answer_carries_the_blobs_the_asked_version_lacks(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    v1 = {"a.py": b"a1\n", "b.py": b"same\n", "c.py": b"c\n"}
    old = api.deploy_files(name, v1).json()["dags_version"]
    # a.py changes, d.py is added with the content c.py already had, e.py is new.
    v2 = {**v1, "a.py": b"a2\n", "d.py": b"c\n", "e.py": b"e\n"}
    new = api.deploy_files(name, v2).json()["dags_version"]

    answer = _current(api, name, old, inline=MIB)
    assert answer.json()["version"] == new
    assert _inline(answer) == {sha256(b"a2\n"): b"a2\n", sha256(b"e\n"): b"e\n"}
    # In manifest order.
    assert [b["sha256"] for b in answer.json()["blobs"]] == [sha256(b"a2\n"), sha256(b"e\n")]

    # Not asked for: today's answer, without the field (older clients refuse unknown ones).
    plain = _current(api, name, old)
    assert plain.status_code == 200 and "blobs" not in plain.json()
    assert plain.json()["files"] == answer.json()["files"]
    # The version asked about is current: 304, nothing inline.
    assert _current(api, name, new, inline=MIB).status_code == 304


def test_only_what_fits_in_the_size_asked_comes_inline(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    old = api.deploy_files(name, {"a.py": b"a\n"}).json()["dags_version"]
    big, small, huge = b"b" * 3000, b"s" * 500, b"h" * (MIB + 1)
    api.deploy_files(name, {"a.py": b"a\n", "big.py": big, "small.py": small, "huge.py": huge})

    # Each blob whole or not at all: big does not fit in 2000 bytes, small does.
    assert _inline(_current(api, name, old, inline=2000)) == {sha256(small): small}
    assert _inline(_current(api, name, old, inline=3500)) == {
        sha256(big): big,
        sha256(small): small,
    }
    # Never more than the server's most (1 MiB), however much is asked.
    everything = _inline(_current(api, name, old, inline=100 * MIB))
    assert set(everything) == {sha256(big), sha256(small)}
    assert _current(api, name, old, inline=-1).status_code == 422


def test_a_version_the_server_does_not_know_gets_no_blobs(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    api.deploy_files(name, {"a.py": b"a\n"})
    unknown = "sha256-" + "0" * 64
    assert _inline(_current(api, name, unknown, inline=MIB)) == {}
    # Without If-None-Match there is nothing to compare with: no blobs either.
    assert _inline(_current(api, name, None, inline=MIB)) == {}


def test_a_token_bound_to_another_deployment_gets_no_blobs_by_its_version(
    server: Server,
) -> None:
    api = server.api()
    name, other = api.create_deployment()["name"], api.create_deployment()["name"]
    theirs = api.deploy_files(other, {"secret.py": b"s\n"}).json()["dags_version"]
    api.deploy_files(name, {"a.py": b"a\n", "secret.py": b"s\n"})
    bound = Api(api.url, api.create_token(role="viewer", deployment=name))
    # Its own deployment's answer, but the version it names is not one it may read: the
    # answer does not tell it which blobs that version has.
    assert _inline(_current(bound, name, theirs, inline=MIB)) == {}


def test_woken_long_polls_carry_the_new_blobs(server: Server) -> None:
    api = server.api()
    name = api.create_deployment()["name"]
    old = api.deploy_files(name, {"a.py": b"one\n", "b.py": b"b\n"}).json()["dags_version"]
    before = _stats(api)["long_polls_waiting"]
    polls = _hold_in_thread(server, name, old, 10, inline=MIB)
    _wait_until_held(api, before + 10)
    new = api.deploy_files(name, {"a.py": b"two\n", "b.py": b"b\n"}).json()["dags_version"]
    answers = polls.result(timeout=60)
    assert {r.json()["version"] for r in answers} == {new}
    assert all(_inline(r) == {sha256(b"two\n"): b"two\n"} for r in answers)
