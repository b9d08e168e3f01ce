"""Crash safety: kill -9 the server mid-upload and around a deploy commit, then restart it."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import ServerFactory
from tests.helpers import Server, entry, sha256, unique


def store_files(srv: Server) -> list[Path]:
    return [p for p in srv.store.rglob("*") if p.is_file()] if srv.store.exists() else []


def assert_store_is_clean(srv: Server) -> None:
    """Every blob in the store is complete (its name is its digest); no temp files remain."""
    blobs = srv.stored_blob_files()
    for digest, path in blobs.items():
        assert sha256(path.read_bytes()) == digest, f"partial or corrupt blob {path}"
    leftovers = [p for p in store_files(srv) if p not in set(blobs.values())]
    assert leftovers == [], f"files left in the store after restart: {leftovers}"


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
        nxt = api.deploy_files(
            name, {"dag.py": f"after crash {round_}".encode()}, expect_seq=len(acknowledged)
        )
        assert nxt.status_code == 201, nxt.text
        assert nxt.json()["seq"] == len(acknowledged) + 1
        acknowledged[nxt.json()["seq"]] = nxt.json()["dags_version"]
