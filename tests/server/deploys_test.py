"""Deploy commits over HTTP: validation, atomicity, kinds, carry-forward, seq, rollback, diff."""

from __future__ import annotations

import os
from typing import Any

import pytest

from dagship.core.manifest import EMPTY_VERSION, Manifest
from tests.helpers import Api, Server, assert_error, entry, sha256, unique


def deployment(api: Api, **fields: Any) -> str:
    return str(api.create_deployment(unique(), **fields)["name"])


def version_of(files: dict[str, bytes]) -> str:
    return Manifest.from_dicts([entry(p, d) for p, d in files.items()]).version


# ------------------------------------------------------------------ bad manifests


BAD_PATHS = {
    "absolute": "/etc/passwd",
    "dotdot": "../outside.py",
    "dotdot-inner": "a/../../outside.py",
    "backslash": "dags\\win.py",
    "nul": "a\x00b.py",
    "too-long": "d/" + "x" * 1024,
    "empty-part": "a//b.py",
}


@pytest.mark.parametrize("kind", ["dags", "project"])
@pytest.mark.parametrize("case", sorted(BAD_PATHS))
def test_bad_path_is_422_and_changes_nothing(
    server: Server, api: Api, case: str, kind: str
) -> None:
    name = deployment(api)
    good = api.deploy_files(name, {"ok.py": b"first " + name.encode()}, "full")
    assert good.status_code == 201, good.text
    data = f"content for {case} {name}".encode()
    api.upload(data)
    blobs_before = server.blob_count()
    manifest = [entry("fine.py", b"first " + name.encode()), entry(BAD_PATHS[case], data)]
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": kind, f"{kind}_manifest": manifest, "origin": "cli"},
    )
    err = assert_error(r, 422, "bad_manifest")
    assert "path" in err["detail"].lower()
    assert api.deploy_count(name) == 1
    assert server.blob_count() == blobs_before
    assert api.get(f"/deployments/{name}").json()["current"]["id"] == good.json()["id"]


@pytest.mark.parametrize(
    ("case", "manifest", "needle"),
    [
        ("duplicate", [entry("a.py", b"1"), entry("a.py", b"2")], "duplicate"),
        ("file-and-folder", [entry("a", b"1"), entry("a/b.py", b"2")], "a"),
        ("bad-digest", [{"path": "a.py", "sha256": "xyz", "size": 1}], "sha256"),
        ("negative-size", [{**entry("a.py", b"1"), "size": -1}], "size"),
        ("no-path", [{"sha256": sha256(b"1"), "size": 1}], ""),
    ],
)
def test_malformed_manifest_is_422_and_changes_nothing(
    server: Server, api: Api, case: str, manifest: list[dict[str, Any]], needle: str
) -> None:
    name = deployment(api)
    for data in (b"1", b"2"):
        api.upload(data)
    blobs_before = server.blob_count()
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": manifest, "origin": "cli"},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] in ("bad_manifest", "invalid"), body
    assert needle in body["detail"]
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs_before


def test_missing_blobs_are_422_listing_them(server: Server, api: Api) -> None:
    name = deployment(api)
    present = b"present " + os.urandom(8)
    absent = [os.urandom(32) for _ in range(3)]
    api.upload(present)
    blobs_before = server.blob_count()
    manifest = [entry("have.py", present)] + [
        entry(f"lack_{i}.py", data) for i, data in enumerate(absent)
    ]
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": manifest, "origin": "cli"},
    )
    err = assert_error(r, 422, "missing_blobs")
    assert sorted(err["missing"]) == sorted(sha256(d) for d in absent)
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs_before


def test_size_mismatch_is_422(api: Api) -> None:
    name = deployment(api)
    data = b"twelve bytes"
    api.upload(data)
    bad = {**entry("a.py", data), "size": len(data) + 1}
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": [bad], "origin": "cli"},
    )
    assert_error(r, 422, "size_mismatch")
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize("kind", ["dags", "project", "full"])
def test_kind_needs_its_manifests(api: Api, kind: str) -> None:
    name = deployment(api)
    r = api.post(f"/deployments/{name}/deploys", json={"kind": kind, "origin": "cli"})
    assert_error(r, 422)
    assert api.deploy_count(name) == 0


def test_unknown_kind_and_origin_are_422(api: Api) -> None:
    name = deployment(api)
    r = api.post(f"/deployments/{name}/deploys", json={"kind": "everything", "dags_manifest": []})
    assert_error(r, 422, "invalid")
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": [], "origin": "rollback"},
    )
    assert_error(r, 422, "invalid")


def test_unknown_deployment_is_404(api: Api) -> None:
    r = api.post(
        "/deployments/no-such-deployment/deploys",
        json={"kind": "dags", "dags_manifest": [], "origin": "cli"},
    )
    err = assert_error(r, 404, "deployment_not_found")
    assert err["deployment"] == "no-such-deployment"


# ------------------------------------------------------------------ seq and carry-forward


def test_seq_is_contiguous_and_expect_seq_conflicts(api: Api) -> None:
    name = deployment(api)
    seqs = []
    for i in range(3):
        r = api.deploy_files(name, {"a.py": f"v{i}".encode()}, expect_seq=i)
        assert r.status_code == 201, r.text
        seqs.append(r.json()["seq"])
    assert seqs == [1, 2, 3]
    err = assert_error(api.deploy_files(name, {"a.py": b"late"}, expect_seq=2), 409, "seq_conflict")
    assert (err["current_seq"], err["deployment"]) == (3, name)
    assert "3" in err["detail"]
    assert api.deploy_count(name) == 3
    fresh = deployment(api)
    err = assert_error(api.deploy_files(fresh, {"a.py": b"x"}, expect_seq=1), 409, "seq_conflict")
    assert err["current_seq"] == 0
    assert [d["seq"] for d in api.deploys(name)] == [3, 2, 1]


def test_deploy_record_fields(api: Api) -> None:
    name = deployment(api)
    files = {"a.py": b"alpha", "sub/b.py": b"beta"}
    r = api.deploy_files(
        name,
        files,
        "full",
        project_files={"requirements.txt": b"pandas\n"},
        description="first",
        uploaded_files=2,
        uploaded_bytes=9,
        git_sha="a" * 40,
        git_branch="main",
        git_author="Ada <ada@example.com>",
        git_message="msg",
        git_dirty=False,
        origin="ci",
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["id"].startswith("dpl_")
    assert (d["seq"], d["deployment"], d["kind"], d["origin"]) == (1, name, "full", "ci")
    assert d["dags_version"] == version_of(files)
    assert d["project_version"] == version_of({"requirements.txt": b"pandas\n"})
    assert (d["dags_files"], d["project_files"]) == (2, 1)
    assert (d["uploaded_files"], d["uploaded_bytes"]) == (2, 9)
    assert (d["git_sha"], d["git_branch"], d["git_message"]) == ("a" * 40, "main", "msg")
    assert d["git_dirty"] is False
    assert d["description"] == "first" and d["source_deploy_id"] is None
    assert d["created_at"].endswith("Z")
    assert api.get(f"/deploys/{d['id']}").json() == d
    assert api.get(f"/deployments/{name}").json()["current"] == d
    assert_error(api.get("/deploys/dpl_0000000000000000"), 404, "not_found")


def test_deploy_records_checks(api: Api) -> None:
    name = deployment(api)
    plain = api.deploy_files(name, {"a.py": b"one " + name.encode()})
    assert plain.status_code == 201, plain.text
    # A client that says nothing about checks ran none.
    assert plain.json()["checks"] == {"parse": "not-run", "pytest": "not-run"}
    checked = api.deploy_files(
        name, {"a.py": b"two " + name.encode()}, checks={"parse": "passed", "pytest": "passed"}
    )
    assert checked.status_code == 201, checked.text
    assert checked.json()["checks"] == {"parse": "passed", "pytest": "passed"}
    skipped = api.deploy_files(
        name, {"a.py": b"three " + name.encode()}, checks={"parse": "skipped"}
    )
    assert skipped.json()["checks"] == {"parse": "skipped", "pytest": "not-run"}
    stored = api.get(f"/deploys/{checked.json()['id']}").json()
    assert stored["checks"] == {"parse": "passed", "pytest": "passed"}
    assert [d["checks"]["parse"] for d in api.deploys(name)] == ["skipped", "passed", "not-run"]
    # A rollback runs no checks, whatever the deploy it copies ran.
    back = api.post(f"/deployments/{name}/rollback", json={"to_seq": 2}).json()["deploy"]
    assert back["checks"] == {"parse": "not-run", "pytest": "not-run"}


@pytest.mark.parametrize(
    "checks",
    [{"parse": "failed"}, {"parse": "passed", "lint": "passed"}, {"pytest": True}, "passed"],
)
def test_bad_checks_are_422_and_change_nothing(api: Api, checks: Any) -> None:
    name = deployment(api)
    r = api.deploy_files(name, {"a.py": b"x " + name.encode()}, checks=checks)
    assert_error(r, 422, "invalid")
    assert api.deploy_count(name) == 0


def test_full_deploy_with_identical_trees(api: Api) -> None:
    """The DAG bundle and the project may have the same content (hence the same version)."""
    name = deployment(api)
    files = {"same.py": b"identical trees " + name.encode()}
    r = api.deploy_files(name, files, "full", project_files=files)
    assert r.status_code == 201, r.text
    assert r.json()["dags_version"] == r.json()["project_version"] == version_of(files)
    assert set(api.manifest(r.json()["dags_version"])) == {"same.py"}


def test_same_tree_in_two_deployments(api: Api) -> None:
    """Manifests are content-addressed: a version already stored is reused, not re-inserted."""
    files = {"shared.py": b"shared by two deployments"}
    versions = []
    for _ in range(2):
        name = deployment(api)
        r = api.deploy_files(name, files, "full", project_files={"requirements.txt": b"x\n"})
        assert r.status_code == 201, r.text
        versions.append(r.json()["dags_version"])
        # The same tree again in the same deployment, as a DAG-only deploy.
        again = api.deploy_files(name, {**files, "more.py": b"more"})
        assert again.status_code == 201, again.text
        back = api.deploy_files(name, files)
        assert back.status_code == 201, back.text
    assert versions[0] == versions[1] == version_of(files)


def test_server_computes_versions_not_the_client(api: Api) -> None:
    name = deployment(api)
    files = {"a.py": b"server computes"}
    r = api.deploy_files(name, files, dags_version="sha256-" + "0" * 64)
    assert r.status_code in (201, 422), r.text
    if r.status_code == 201:
        assert r.json()["dags_version"] == version_of(files)


def test_dags_deploy_carries_the_project_version_forward(api: Api) -> None:
    name = deployment(api)
    first = api.deploy_files(name, {"x.py": b"dags only"}).json()
    assert first["kind"] == "dags"
    assert first["project_version"] == EMPTY_VERSION
    project = api.deploy_files(name, {"requirements.txt": b"pandas\n"}, "project").json()
    assert project["dags_version"] == first["dags_version"]
    assert project["project_version"] == version_of({"requirements.txt": b"pandas\n"})
    dags = api.deploy_files(name, {"x.py": b"dags v2"}).json()
    assert dags["project_version"] == project["project_version"]
    assert dags["dags_version"] == version_of({"x.py": b"dags v2"})
    assert [d["seq"] for d in (first, project, dags)] == [1, 2, 3]


def test_disabled_dag_deploys_refuse_dags_and_project_kinds(api: Api) -> None:
    name = deployment(api, dag_deploys=False)
    assert api.get(f"/deployments/{name}").json()["dag_deploys"] is False
    for kind in ("dags", "project"):
        err = assert_error(
            api.deploy_files(name, {"a.py": b"x"}, kind), 409, "dag_deploys_disabled"
        )
        assert "full" in err["detail"] and err["deployment"] == name
    assert api.deploy_count(name) == 0
    assert api.deploy_files(name, {"a.py": b"x"}, "full").status_code == 201
    r = api.patch(f"/deployments/{name}", json={"dag_deploys": True})
    assert r.status_code == 200 and r.json()["dag_deploys"] is True
    assert api.deploy_files(name, {"a.py": b"y"}, "dags").status_code == 201


def test_empty_dags_manifest_is_the_empty_version(api: Api) -> None:
    name = deployment(api)
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "full", "dags_manifest": [], "project_manifest": [], "origin": "cli"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["dags_version"] == EMPTY_VERSION


# ------------------------------------------------------------------ rollback and diff


def test_rollback(api: Api) -> None:
    name = deployment(api)
    assert_error(api.post(f"/deployments/{name}/rollback", json={}), 409, "conflict")
    d1 = api.deploy_files(name, {"a.py": b"one"}).json()
    assert_error(api.post(f"/deployments/{name}/rollback", json={}), 409, "conflict")
    d2 = api.deploy_files(name, {"a.py": b"two"}).json()
    d3 = api.deploy_files(name, {"a.py": b"three"}).json()

    r = api.post(f"/deployments/{name}/rollback", json={"description": "bad release"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["unchanged"] is False
    back = body["deploy"]
    assert (back["seq"], back["origin"], back["source_deploy_id"]) == (4, "rollback", d2["id"])
    assert (back["dags_version"], back["project_version"]) == (
        d2["dags_version"],
        d2["project_version"],
    )
    assert (back["uploaded_files"], back["uploaded_bytes"]) == (0, 0)
    assert back["description"] == "bad release"

    r = api.post(f"/deployments/{name}/rollback", json={"to_seq": 1})
    assert r.status_code == 201 and r.json()["deploy"]["source_deploy_id"] == d1["id"]
    assert r.json()["deploy"]["dags_version"] == d1["dags_version"]

    same = api.post(f"/deployments/{name}/rollback", json={"to_seq": 1})
    assert same.status_code == 200, same.text
    assert same.json()["unchanged"] is True
    assert same.json()["deploy"]["seq"] == 5
    assert api.deploy_count(name) == 5

    assert_error(api.post(f"/deployments/{name}/rollback", json={"to_seq": 99}), 404)
    err = assert_error(
        api.post(f"/deployments/{name}/rollback", json={"to_seq": 3, "expect_seq": 4}),
        409,
        "seq_conflict",
    )
    assert err["current_seq"] == 5
    assert api.deploy_count(name) == 5
    assert d3["seq"] == 3


def test_diff_between_deploys(api: Api) -> None:
    name = deployment(api)
    a = api.deploy_files(name, {"keep.py": b"k", "gone.py": b"g", "edit.py": b"1"}).json()
    b = api.deploy_files(name, {"keep.py": b"k", "new.py": b"n", "edit.py": b"2"}).json()
    r = api.get(f"/deploys/{a['id']}/diff/{b['id']}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["from"]["id"], d["to"]["id"]) == (a["id"], b["id"])
    assert d["dags"] == {"added": ["new.py"], "removed": ["gone.py"], "changed": ["edit.py"]}
    assert d["project"] == {"added": [], "removed": [], "changed": []}
    back = api.get(f"/deploys/{b['id']}/diff/{a['id']}").json()
    assert back["dags"]["added"] == ["gone.py"]
    assert_error(api.get(f"/deploys/{a['id']}/diff/dpl_0000000000000000"), 404)


def test_deployment_crud(api: Api) -> None:
    name = unique()
    created = api.create_deployment(name, description="the prod one")
    assert (created["name"], created["description"], created["dag_deploys"]) == (
        name,
        "the prod one",
        True,
    )
    assert created["current"] is None
    assert_error(api.post("/deployments", json={"name": name}), 409, "exists")
    names = [d["name"] for d in api.get("/deployments", params={"limit": 1000}).json()]
    assert name in names and names == sorted(names)
    r = api.patch(f"/deployments/{name}", json={"description": "changed"})
    assert r.json()["description"] == "changed" and r.json()["dag_deploys"] is True
    blob = api.upload(b"survives deletion " + name.encode())
    api.deploy_files(name, {"a.py": b"survives deletion " + name.encode()})
    assert api.delete(f"/deployments/{name}").status_code == 204
    assert_error(api.get(f"/deployments/{name}"), 404, "deployment_not_found")
    assert api.missing([blob]) == []
    assert_error(api.delete(f"/deployments/{name}"), 404, "deployment_not_found")
    api.create_deployment(name)
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize("bad", ["UPPER", "-lead", "trail-", "a_b", "x" * 64, ""])
def test_bad_deployment_names_are_422(api: Api, bad: str) -> None:
    assert_error(api.post("/deployments", json={"name": bad}), 422)


def test_deploys_list_limit(api: Api) -> None:
    name = deployment(api)
    for i in range(4):
        api.deploy_files(name, {"a.py": f"{i}".encode()})
    r = api.get(f"/deployments/{name}/deploys", params={"limit": 2})
    assert [d["seq"] for d in r.json()] == [4, 3]
    assert_error(api.get(f"/deployments/{name}/deploys", params={"limit": 0}), 422)
    assert_error(api.get(f"/deployments/{name}/deploys", params={"limit": 1001}), 422)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_deploys_made_before_checks_were_recorded_read_not_run(
    make_server: Any, backend: str
) -> None:
    """Migration 0003 on a database with deploys: down to 0002 and up again, on both databases."""
    from alembic import command
    from sqlalchemy import create_engine

    from dagship.server.db.migrate import alembic_config

    server = make_server(backend)
    api = server.api()
    name = deployment(api)
    made = api.deploy_files(name, {"a.py": b"old " + name.encode()}, checks={"parse": "passed"})
    assert made.status_code == 201, made.text
    server.stop()
    engine = create_engine(server.database_url or f"sqlite:///{server.home / 'dagship.db'}")
    try:
        command.downgrade(alembic_config(engine), "0002")
    finally:
        engine.dispose()
    server.start()  # migrates to the newest revision again
    api = server.api()
    assert api.get(f"/deploys/{made.json()['id']}").json()["checks"] == {
        "parse": "not-run",
        "pytest": "not-run",
    }
    again = api.deploy_files(name, {"a.py": b"new " + name.encode()}, checks={"parse": "passed"})
    assert again.json()["checks"]["parse"] == "passed"
