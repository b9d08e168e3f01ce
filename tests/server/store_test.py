"""Stored blobs are checked, not trusted: sizes on read, `dagship server scrub`, and
`dagship server gc`; through the real server and the real `dagship server` commands."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy

from tests.conftest import ServerFactory
from tests.helpers import Api, Cli, Result, Server, assert_error, entry, sha256, unique

DAY = 86400


def server_command(srv: Server, *args: str) -> Result:
    """`dagship server ...` with the server's own settings (beside the running server)."""
    return Cli(None, None)("server", *args, env=srv.env())


def make_old(path: Path, days: float) -> None:
    """The blob's file was last written or used `days` ago."""
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment))


def age_deploy(srv: Server, deploy_id: str, days: float) -> None:
    """Pretend the deploy was made `days` ago."""
    url = srv.database_url or f"sqlite:///{srv.home / 'dagship.db'}"
    engine = sqlalchemy.create_engine(url)
    moment = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.text("UPDATE deploys SET created_at = :moment WHERE id = :id"),
            {"moment": moment, "id": deploy_id},
        )
    engine.dispose()


def content(label: str) -> bytes:
    return f"{label} {uuid.uuid4().hex}\n".encode()


def deploy(api: Api, name: str, files: dict[str, bytes]) -> dict[str, Any]:
    r = api.deploy_files(name, files)
    assert r.status_code == 201, r.text
    return dict(r.json())


# --------------------------------------------------------------------------- sizes on read


def test_a_blob_changed_on_disk_is_not_served_and_is_reported_missing(
    server: Server, api: Api
) -> None:
    data = content("edited on disk") * 100
    digest = api.upload(data)
    path = server.stored_blob_files()[digest]

    for damaged in (data + b"appended", data[:10]):
        path.write_bytes(damaged)
        r = api.get(f"/blobs/{digest}")
        body = assert_error(r, 404, "not_found")
        assert "damaged" in body["detail"], body
        assert api.missing([digest]) == [digest]

    # The next deploy uploads it again, which repairs it.
    r = api.put(f"/blobs/{digest}", content=data)
    assert r.status_code == 200, r.text
    assert api.missing([digest]) == []
    assert api.get(f"/blobs/{digest}").content == data


def test_a_blob_deleted_on_disk_is_reported_missing(server: Server, api: Api) -> None:
    data = content("deleted on disk")
    digest = api.upload(data)
    server.stored_blob_files()[digest].unlink()
    assert api.missing([digest]) == [digest]
    assert_error(api.get(f"/blobs/{digest}"), 404, "not_found")


# --------------------------------------------------------------------------- scrub


def test_scrub_quarantines_damaged_blobs_and_the_next_deploy_uploads_them_again(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend)
    api = srv.api()
    name = unique()
    api.create_deployment(name)
    files = {"a.py": content("a") * 50, "b.py": content("b"), "c.py": content("c")}
    deploy(api, name, files)
    a, b = sha256(files["a.py"]), sha256(files["b.py"])
    assert server_command(srv, "scrub", "--json").ok().json()["damaged"] == []

    # Same size, other bytes: only re-hashing can tell.
    path = srv.stored_blob_files()[a]
    rotten = b"X" + files["a.py"][1:]
    path.write_bytes(rotten)
    assert api.missing([a, b]) == []
    srv.stored_blob_files()[b].unlink()

    result = server_command(srv, "scrub", "--json")
    assert result.code == 1, result
    report = result.json()
    assert report["checked"] == 2  # b.py is gone
    assert [bad["digest"] for bad in report["damaged"]] == [a]
    assert report["damaged"][0]["actual"] == sha256(rotten)
    assert Path(report["damaged"][0]["quarantined_to"]).read_bytes() == rotten
    assert report["vanished"] == [b]
    assert a not in srv.stored_blob_files()

    # Both are now missing: a deploy that counts on them is refused until they are uploaded.
    assert api.missing([a, b]) == [a, b]
    assert_error(api.get(f"/blobs/{a}"), 404, "not_found")
    changed = {**files, "d.py": content("d")}
    api.upload(changed["d.py"])
    manifest = [entry(p, d) for p, d in sorted(changed.items())]
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": manifest, "origin": "cli"},
    )
    assert_error(r, 422, "missing_blobs")
    assert sorted(r.json()["missing"]) == sorted([a, b])
    deploy(api, name, changed)
    assert api.get(f"/blobs/{a}").content == files["a.py"]

    result = server_command(srv, "scrub").ok()
    assert "Checked 4 blob(s)" in result.out and "The store is clean." in result.out


# --------------------------------------------------------------------------- gc


def test_gc_deletes_only_blobs_no_deploy_within_retention_needs(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend)
    api = srv.api()
    name, other = unique(), unique()
    api.create_deployment(name)
    api.create_deployment(other)
    blob = {label: content(label) for label in ("old", "current", "kept", "stray", "asked")}
    first = deploy(api, name, {"dag.py": blob["old"]})
    deploy(api, name, {"dag.py": blob["current"]})
    # The only deploy of `other` is old, but it is current: its blobs stay.
    lone = deploy(api, other, {"dag.py": blob["kept"]})
    fresh = api.upload(content("uploaded just now"))
    for data in (blob["stray"], blob["asked"]):
        api.upload(data)
    for deploy_id in (first["id"], lone["id"]):
        age_deploy(srv, deploy_id, 40)
    stored = srv.stored_blob_files()
    digest = {label: sha256(data) for label, data in blob.items()}
    for label in blob:
        make_old(stored[digest[label]], 40)
    # A client is told this one is present (it may be uploading the rest of its deploy).
    assert api.missing([digest["asked"]]) == []
    doomed = {digest["old"], digest["stray"]}

    too_short = server_command(srv, "gc", "--older-than", "10m")
    too_short.failed("too short")

    dry = server_command(srv, "gc", "--older-than", "30d", "--dry-run", "--json").ok().json()
    assert dry["dry_run"] is True and set(dry["removed"]) == doomed
    assert dry["kept"] == 2  # current and kept: old, but used by current deploys
    assert set(srv.stored_blob_files()) >= doomed

    done = server_command(srv, "gc", "--older-than", "30d", "--json").ok().json()
    assert set(done["removed"]) == doomed
    assert done["removed_bytes"] == len(blob["old"]) + len(blob["stray"])
    assert set(srv.stored_blob_files()).isdisjoint(doomed)
    everything = [*digest.values(), fresh]
    assert set(api.missing(everything)) == doomed
    assert api.get(f"/blobs/{digest['current']}").content == blob["current"]

    # Rolling back to the deploy past retention would serve nothing: refused, clearly.
    r = api.post(f"/deployments/{name}/rollback", json={"to_seq": 1})
    body = assert_error(r, 409, "missing_blobs")
    assert "gc" in body["detail"], body
    assert len(api.deploys(name)) == 2

    # Deploying that code again uploads what gc deleted.
    deploy(api, name, {"dag.py": blob["old"]})
    assert api.missing([digest["old"]]) == []

    again = server_command(srv, "gc", "--older-than", "30d").ok()
    assert "Deleted 0 blob(s)" in again.out, again.out


def test_server_commands_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    cli = Cli(None, None)
    home = {"DAGSHIP_HOME": str(tmp_path / "home")}
    cli("server", "gc", "--older-than", "soon", env=home).usage_error("--older-than", "soon")
    unreachable = {**home, "DAGSHIP_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x"}
    for command in ("scrub", "gc"):
        cli("server", command, env=unreachable).failed("cannot use the database")
    assert not (tmp_path / "home").exists(), "nothing is created when the database is wrong"
    s3 = {**home, "DAGSHIP_STORAGE_URL": "s3://bucket/blobs"}
    cli("server", "scrub", env=s3).failed("DAGSHIP_STORAGE_URL")
