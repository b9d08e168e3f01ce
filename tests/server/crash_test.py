"""Crash safety: kill -9 the server mid-upload and inside or around a deploy commit, then restart
it: no partial blob or deploy, nothing acknowledged lost, and `dagship server scrub` finds the
store clean."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.helpers import PG_ADMIN_DSN, Cli, Server, entry, sha256, unique

# Files in the deploy that is killed while it commits: thousands of rows to write.
COMMIT_FILES = 5000


def store_files(srv: Server) -> list[Path]:
    return [p for p in srv.store.rglob("*") if p.is_file()] if srv.store.exists() else []


def assert_store_is_clean(srv: Server) -> None:
    """`dagship server scrub` finds every blob whole and every recorded blob present; no
    temporary files remain."""
    blobs = srv.stored_blob_files()
    leftovers = [p for p in store_files(srv) if p not in set(blobs.values())]
    assert leftovers == [], f"files left in the store after restart: {leftovers}"
    report = Cli(None, None)("server", "scrub", "--json", env=srv.env()).ok().json()
    assert report["checked"] == len(blobs)
    assert report["damaged"] == [] and report["vanished"] == [], report


def raw_request(
    srv: Server,
    method: str,
    path: str,
    body: bytes,
    send: int | None = None,
    content_type: str = "application/octet-stream",
) -> socket.socket:
    """Send a request with a raw socket; only the first ``send`` bytes of the body."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    head = (
        f"{method} /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        f"Authorization: Bearer {srv.admin_token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) if send is None else send])
    return sock


def wait_for_temp_file(srv: Server, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p not in set(srv.stored_blob_files().values()) for p in store_files(srv)):
            return True
        time.sleep(0.02)
    return False


def test_kill_during_blob_upload_leaves_no_partial_blob(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend)
    api = srv.api()
    kept = api.upload(b"uploaded before the crash")
    data = os.urandom(4 * 1024 * 1024)
    digest = sha256(data)
    sock = raw_request(srv, "PUT", f"/blobs/{digest}", data, send=len(data) // 2)
    try:
        # The upload is in flight: the server is writing the first half to a temporary file.
        assert wait_for_temp_file(srv), "the server should stream uploads to a temp file"
        srv.kill()
    finally:
        sock.close()
    assert digest not in srv.stored_blob_files()

    srv.start()
    api = srv.api()
    assert_store_is_clean(srv)
    assert api.missing([digest, kept]) == [digest]
    assert api.get(f"/blobs/{digest}").status_code == 404
    name = unique()
    api.create_deployment(name)
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": [entry("big.bin", data)], "origin": "cli"},
    )
    assert r.status_code == 422 and r.json()["missing"] == [digest], r.text
    # Uploading again after the crash works and gives the whole blob.
    assert api.upload(data) == digest
    assert api.get(f"/blobs/{digest}").content == data
    assert (
        api.post(
            f"/deployments/{name}/deploys",
            json={"kind": "dags", "dags_manifest": [entry("big.bin", data)], "origin": "cli"},
        ).status_code
        == 201
    )


@pytest.mark.parametrize("delays", [(0.0, 0.005, 0.03)])
def test_kill_around_a_deploy_commit_is_all_or_nothing(
    make_server: ServerFactory, backend: str, delays: tuple[float, ...]
) -> None:
    srv = make_server(backend)
    api = srv.api()
    name = unique()
    api.create_deployment(name)
    acknowledged: dict[int, str] = {}
    for i in range(2):
        d = api.deploy_files(name, {"dag.py": f"acknowledged {i}".encode()}).json()
        acknowledged[d["seq"]] = d["dags_version"]

    for round_, delay in enumerate(delays):
        files = {f"dag_{j}.py": f"round {round_} file {j}".encode() for j in range(20)}
        manifest = [entry(p, d) for p, d in sorted(files.items())]
        for data in files.values():
            api.upload(data)
        body = json.dumps(
            {
                "kind": "dags",
                "dags_manifest": manifest,
                "origin": "cli",
                "expect_seq": len(acknowledged),
            }
        ).encode()
        sock = raw_request(
            srv, "POST", f"/deployments/{name}/deploys", body, content_type="application/json"
        )
        try:
            time.sleep(delay)
            srv.kill()
        finally:
            sock.close()

        srv.start()
        api = srv.api()
        deploys = sorted(api.deploys(name), key=lambda d: d["seq"])
        seqs = [d["seq"] for d in deploys]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        for seq, version in acknowledged.items():
            assert deploys[seq - 1]["dags_version"] == version, "an acknowledged deploy was lost"
        assert len(deploys) in (len(acknowledged), len(acknowledged) + 1)
        if len(deploys) == len(acknowledged) + 1:
            # The interrupted deploy made it: it must be whole.
            last = deploys[-1]
            assert last["dags_files"] == len(files)
            assert set(api.manifest(last["dags_version"])) == set(files)
            current = api.get(f"/deployments/{name}/dags/current").json()
            assert current["version"] == last["dags_version"]
            acknowledged[last["seq"]] = last["dags_version"]
        assert api.get(f"/deployments/{name}").json()["current"]["seq"] == len(acknowledged)
        assert_store_is_clean(srv)

        # The next deploy works and takes the next seq.
        # It replaces a whole tree of DAG files: the guard against mass removals is waived.
        nxt = api.deploy_files(
            name,
            {"dag.py": f"after crash {round_}".encode()},
            expect_seq=len(acknowledged),
            allow_removals=True,
        )
        assert nxt.status_code == 201, nxt.text
        assert nxt.json()["seq"] == len(acknowledged) + 1
        acknowledged[nxt.json()["seq"]] = nxt.json()["dags_version"]


def writing_transaction_open(srv: Server) -> bool:
    """Whether the server is inside a transaction that has written (PostgreSQL) or holds the
    write lock (SQLite): a deploy commit under way."""
    if srv.pg_db is not None:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            # A transaction id is given at the first write; the query is the deploy's.
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND backend_xid IS NOT NULL AND query ILIKE '%%manifest%%'",
                (srv.pg_db,),
            ).fetchone()
        return bool(row and row[0])
    conn = sqlite3.connect(srv.home / "dagship.db", timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def test_kill_inside_the_commit_transaction_leaves_no_partial_deploy(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend)
    api = srv.api()
    name = unique()
    api.create_deployment(name)
    acknowledged = api.deploy_files(name, {"dag.py": b"acknowledged"}).json()
    # Many files (one blob) make the commit write thousands of rows: long enough to be
    # caught inside its transaction.
    data = b"the same bytes in every file\n"
    api.upload(data)
    manifest = [entry(f"dags/file_{i:05}.py", data) for i in range(COMMIT_FILES)]
    body = json.dumps({"kind": "dags", "dags_manifest": manifest, "origin": "cli"}).encode()
    sock = raw_request(
        srv, "POST", f"/deployments/{name}/deploys", body, content_type="application/json"
    )
    try:
        deadline = time.monotonic() + 30
        while not writing_transaction_open(srv):
            assert time.monotonic() < deadline, "the commit never opened its transaction"
        srv.kill()
    finally:
        sock.close()

    srv.start()
    api = srv.api()
    deploys = sorted(api.deploys(name), key=lambda d: d["seq"])
    assert deploys[0]["id"] == acknowledged["id"], "the acknowledged deploy was lost"
    if len(deploys) == 2:
        # The commit made it before the kill: then it is whole.
        newest = deploys[1]
        assert newest["dags_files"] == COMMIT_FILES
        assert len(api.manifest(newest["dags_version"])) == COMMIT_FILES
    else:
        assert len(deploys) == 1
    current = api.get(f"/deployments/{name}").json()["current"]
    assert current["seq"] == len(deploys)
    assert_store_is_clean(srv)
    # The next deploy works and takes the next seq.
    extra = b"after the crash"
    api.upload(extra)
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "dags_manifest": [*manifest, entry("x.py", extra)], "origin": "cli"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["seq"] == len(deploys) + 1
