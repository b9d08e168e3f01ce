"""Manifest deltas over HTTP: a deploy that sends a tree's changes from the deployment's current
version instead of its whole manifest; refusals change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dagship.core.manifest import Manifest
from tests.conftest import ServerFactory
from tests.helpers import Api, assert_error, entry, unique

FIRST = {"a.py": b"a one", "b.py": b"b one", "sub/c.py": b"c one", "sub/d.py": b"d one"}


def version_of(files: dict[str, bytes], executable: frozenset[str] = frozenset()) -> str:
    return Manifest.from_dicts([entry(p, d, p in executable) for p, d in files.items()]).version


def delta(
    base: str, version: str, changed: list[dict[str, Any]] | None = None, removed: Any = None
) -> dict[str, Any]:
    return {"base": base, "version": version, "changed": changed or [], "removed": removed or []}


def commit(api: Api, name: str, kind: str = "dags", **body: Any) -> httpx.Response:
    return api.post(f"/deployments/{name}/deploys", json={"kind": kind, **body})


def started(api: Api, files: dict[str, bytes] = FIRST, kind: str = "dags") -> tuple[str, Any]:
    """A new deployment with one deploy of ``files``; returns its name and that deploy."""
    name = str(api.create_deployment(unique())["name"])
    r = api.deploy_files(name, files, kind)
    assert r.status_code == 201, r.text
    return name, r.json()


def assert_unchanged(api: Api, name: str, before: Any, version: str | None = None) -> None:
    """The refused deploy stored nothing: same current deploy, no deploy added, and the
    version it would have made is not stored."""
    assert api.deploy_count(name) == before["seq"]
    assert api.get(f"/deployments/{name}").json()["current"]["id"] == before["id"]
    if version is not None:
        assert api.get(f"/manifests/{version}").status_code == 404


def test_a_delta_gives_the_manifest_the_whole_one_would(api: Api) -> None:
    name, first = started(api)
    new = {"a.py": b"a two", "b.py": b"b one", "sub/d.py": b"d one", "e/f.py": b"f one"}
    for data in (b"a two", b"f one"):
        api.upload(data)
    version = version_of(new, frozenset({"sub/d.py"}))
    changed = [
        entry("a.py", b"a two"),
        entry("e/f.py", b"f one"),
        entry("sub/d.py", b"d one", True),
    ]
    r = commit(api, name, dags_delta=delta(first["dags_version"], version, changed, ["sub/c.py"]))
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["dags_version"] == version
    assert made["dags_files"] == 4
    assert made["dags_removed"] == 1
    assert made["project_version"] == first["project_version"]
    files = api.manifest(version)
    assert sorted(files) == ["a.py", "b.py", "e/f.py", "sub/d.py"]
    assert files["sub/d.py"]["executable"] is True
    # The new version's files are stored as rows too: the next deploy counts its removals
    # from them.
    emptied = api.deploy_files(name, {}, allow_empty=True)
    assert emptied.status_code == 201, emptied.text
    assert emptied.json()["dags_removed"] == 4


def test_a_project_delta_and_a_full_deploy_of_two_deltas(api: Api) -> None:
    name, first = started(api, kind="full")
    api.upload(b"req two")
    project = delta(
        first["project_version"],
        version_of(
            {**{f"project/{p}": d for p, d in FIRST.items()}, "requirements.txt": b"req two"}
        ),
        [entry("requirements.txt", b"req two")],
    )
    r = commit(api, name, "project", project_delta=project)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["dags_version"] == first["dags_version"]
    assert second["project_files"] == 5
    # A delta that changes nothing gives its base: one tree unchanged in a full deploy.
    api.upload(b"b two")
    dags = delta(
        first["dags_version"],
        version_of({**FIRST, "b.py": b"b two"}),
        [entry("b.py", b"b two")],
    )
    same = delta(second["project_version"], second["project_version"])
    r = commit(api, name, "full", dags_delta=dags, project_delta=same)
    assert r.status_code == 201, r.text
    assert r.json()["dags_version"] == dags["version"]
    assert r.json()["project_version"] == second["project_version"]


def test_a_delta_against_another_version_is_409_and_changes_nothing(api: Api) -> None:
    name, first = started(api)
    two = b"a two " + name.encode()  # a version no other test stores
    api.upload(two)
    version = version_of({**FIRST, "a.py": two})
    stale = version_of({"old.py": b"a one"})
    r = commit(api, name, dags_delta=delta(stale, version, [entry("a.py", two)]))
    err = assert_error(r, 409, "base_mismatch")
    assert err["base"] == stale
    assert err["current"] == first["dags_version"]
    assert "dags_manifest" in err["detail"]
    assert_unchanged(api, name, first, version)
    # The same change against the current version is taken.
    r = commit(api, name, dags_delta=delta(first["dags_version"], version, [entry("a.py", two)]))
    assert r.status_code == 201, r.text


def test_a_delta_to_a_deployment_without_deploys_is_409(api: Api) -> None:
    name = str(api.create_deployment(unique())["name"])
    api.upload(b"a one")
    empty = Manifest().version
    r = commit(
        api,
        name,
        dags_delta=delta(empty, version_of({"a.py": b"a one"}), [entry("a.py", b"a one")]),
    )
    err = assert_error(r, 409, "base_mismatch")
    assert err["current"] is None
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize(
    ("case", "changed", "removed", "needle"),
    [
        ("changed-twice", [entry("a.py", b"a two"), entry("a.py", b"a one")], [], "twice"),
        ("changed-and-removed", [entry("a.py", b"a two")], ["a.py"], "twice"),
        ("removed-twice", [], ["b.py", "b.py"], "twice"),
        ("removed-not-in-base", [], ["nowhere.py"], "not in base"),
        ("bad-path", [entry("../a.py", b"a two")], [], "'..'"),
        ("bad-removed-path", [], ["/etc/passwd"], "absolute"),
        ("file-and-folder", [entry("sub", b"a two")], [], "folder"),
        ("case-only", [entry("A.py", b"a two")], [], "case"),
        ("bad-digest", [{"path": "a.py", "sha256": "xyz", "size": 1}], [], "sha256"),
    ],
)
def test_a_bad_delta_is_422_and_changes_nothing(
    api: Api, case: str, changed: list[dict[str, Any]], removed: list[str], needle: str
) -> None:
    name, first = started(api)
    api.upload(b"a two")
    # The version it says does not matter: the delta is refused before it is checked.
    body = delta(first["dags_version"], version_of({"x.py": b"a two"}), changed, removed)
    r = commit(api, name, dags_delta=body)
    err = assert_error(r, 422, "bad_manifest")
    assert "dags_delta" in err["detail"] and needle in err["detail"], (case, err)
    assert_unchanged(api, name, first)


def test_a_delta_giving_another_version_than_it_says_is_422(api: Api) -> None:
    name, first = started(api)
    two = b"a two " + name.encode()
    api.upload(two)
    wrong = version_of({**FIRST, "a.py": b"something else"})
    r = commit(api, name, dags_delta=delta(first["dags_version"], wrong, [entry("a.py", two)]))
    err = assert_error(r, 422, "bad_manifest")
    assert wrong in err["detail"]
    assert_unchanged(api, name, first, version_of({**FIRST, "a.py": two}))


def test_a_delta_whose_blob_is_missing_is_422(api: Api) -> None:
    name, first = started(api)
    lacking = b"never uploaded " + name.encode()
    version = version_of({**FIRST, "a.py": lacking})
    r = commit(
        api, name, dags_delta=delta(first["dags_version"], version, [entry("a.py", lacking)])
    )
    err = assert_error(r, 422, "missing_blobs")
    assert err["missing"] == [entry("a.py", lacking)["sha256"]]
    assert_unchanged(api, name, first, version)


@pytest.mark.parametrize(
    "extra",
    [
        {"dags_manifest": []},
        {"project_delta": delta("sha256-" + "0" * 64, "sha256-" + "0" * 64)},
    ],
)
def test_a_delta_beside_the_whole_manifest_or_outside_its_kind_is_422(
    api: Api, extra: dict[str, Any]
) -> None:
    name, first = started(api)
    same = delta(first["dags_version"], first["dags_version"])
    r = commit(api, name, dags_delta=same, **extra)
    assert_error(r, 422)
    assert_unchanged(api, name, first)


def test_malformed_delta_is_422(api: Api) -> None:
    name, first = started(api)
    for bad in (
        {"base": "nope", "version": first["dags_version"]},
        {"base": first["dags_version"]},
        {**delta(first["dags_version"], first["dags_version"]), "extra": 1},
        delta(first["dags_version"], first["dags_version"], removed=[1]),
    ):
        r = commit(api, name, dags_delta=bad)
        assert_error(r, 422, "invalid")
    assert_unchanged(api, name, first)


def test_removing_most_files_in_a_delta_is_guarded(api: Api) -> None:
    files = {f"f{i:02}.py": f"file {i}".encode() for i in range(20)}
    name, first = started(api, files)
    kept = {"f00.py": files["f00.py"], "new.py": name.encode()}
    api.upload(name.encode())
    body = delta(
        first["dags_version"],
        version_of(kept),
        [entry("new.py", name.encode())],
        sorted(set(files) - set(kept)),
    )
    r = commit(api, name, dags_delta=body)
    err = assert_error(r, 409, "too_many_removals")
    assert err["removed_files"] == 19 and err["current_files"] == 20
    assert_unchanged(api, name, first, body["version"])
    r = commit(api, name, dags_delta=body, allow_removals=True)
    assert r.status_code == 201, r.text
    assert r.json()["dags_removed"] == 19


def test_a_delta_over_the_file_limit_is_413(make_server: ServerFactory) -> None:
    server = make_server(env={"DAGSHIP_MAX_MANIFEST_FILES": "10"})
    api = server.api(server.admin_token)
    files = {f"f{i}.py": b"1" for i in range(10)}  # a private server: nothing else stored
    name, first = started(api, files)
    # Naming more paths than a manifest may hold.
    many = [entry(f"g{i}.py", b"1") for i in range(11)]
    big = version_of({**files, **{f"g{i}.py": b"1" for i in range(11)}})
    r = commit(api, name, dags_delta=delta(first["dags_version"], big, many))
    err = assert_error(r, 413, "manifest_too_large")
    assert err["max_files"] == 10 and "dags_delta" in err["detail"]
    # Giving a manifest over the limit from a small delta.
    one = version_of({**files, "g0.py": b"1"})
    r = commit(api, name, dags_delta=delta(first["dags_version"], one, many[:1]))
    err = assert_error(r, 413, "manifest_too_large")
    assert "11" in err["detail"]
    assert_unchanged(api, name, first, one)
