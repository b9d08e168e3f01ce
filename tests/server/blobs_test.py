"""Blob upload: verified on arrival, size-limited, stored once, nothing partial kept."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.helpers import Api, Server, assert_error, sha256
from tests.s3_helpers import MotoS3, S3Server

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(storage: str, server: Server, s3_server: S3Server) -> Server:
    """Every test here runs on the local store and on S3 (one shared server each)."""
    return s3_server if storage == "s3" else server


@pytest.fixture
def api(server: Server) -> Api:
    return server.api()


def test_upload_then_read_back(server: Server, api: Api) -> None:
    data = os.urandom(3000)
    digest = sha256(data)
    assert api.missing([digest]) == [digest]
    r = api.put(f"/blobs/{digest}", content=data, headers=OCTET)
    assert r.status_code == 201, r.text
    assert r.json() == {"digest": digest, "size": len(data), "created": True}
    again = api.put(f"/blobs/{digest}", content=data, headers=OCTET)
    assert again.status_code == 200 and again.json()["created"] is False
    assert api.missing([digest]) == []
    got = api.get(f"/blobs/{digest}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"].startswith("application/octet-stream")
    stored = server.stored_blob_files()[digest]
    assert stored.read_bytes() == data
    assert stored.parent.name == digest[:2]


def test_streamed_upload(api: Api) -> None:
    chunks = [os.urandom(64 * 1024) for _ in range(8)]
    digest = sha256(b"".join(chunks))
    r = api.put(f"/blobs/{digest}", content=iter(chunks), headers=OCTET)
    assert r.status_code == 201, r.text
    assert api.get(f"/blobs/{digest}").content == b"".join(chunks)


def test_missing_keeps_request_order(api: Api) -> None:
    have = api.upload(b"present " + os.urandom(8))
    wanted = [sha256(os.urandom(8)) for _ in range(5)]
    assert api.missing([wanted[0], have, *wanted[1:]]) == wanted
    assert api.missing(list(reversed(wanted))) == list(reversed(wanted))


def test_missing_rejects_bad_digests(api: Api) -> None:
    assert_error(api.post("/blobs/missing", json={"digests": ["nothex"]}), 422)
    assert_error(api.post("/blobs/missing", json={}), 422, "invalid")


def test_digest_mismatch_is_422_and_stores_nothing(server: Server, api: Api) -> None:
    data, claimed = os.urandom(2048), sha256(b"something else entirely")
    before = server.blob_count()
    err = assert_error(
        api.put(f"/blobs/{claimed}", content=data, headers=OCTET), 422, "digest_mismatch"
    )
    assert claimed in err["detail"] or sha256(data) in err["detail"]
    assert server.blob_count() == before
    assert sha256(data) not in server.stored_blob_files()
    assert api.missing([claimed]) == [claimed]
    assert api.get(f"/blobs/{claimed}").status_code == 404


def test_bad_digest_in_path_is_refused(api: Api) -> None:
    r = api.put("/blobs/not-a-digest", content=b"x", headers=OCTET)
    assert r.status_code in (400, 422), r.text
    r = api.put(f"/blobs/{sha256(b'x').upper()}", content=b"x", headers=OCTET)
    assert r.status_code in (400, 422), r.text
    assert api.get("/blobs/../../admin-token").status_code in (400, 404, 422)


def test_unknown_blob_is_404(api: Api) -> None:
    assert_error(api.get(f"/blobs/{sha256(os.urandom(16))}"), 404, "not_found")


def test_blob_over_the_size_limit_is_413(
    make_server: ServerFactory, backend: str, storage: str, moto_s3: MotoS3, tmp_path: Path
) -> None:
    limit = {"DAGSHIP_MAX_BLOB_SIZE": "1024"}
    if storage == "s3":
        srv: Server = S3Server(tmp_path / "home-s3", moto_s3, backend, limit)
        srv.start()
    else:
        srv = make_server(backend, env=limit)
    api = srv.api()
    assert httpx.get(srv.url + "/api/v1/info").json()["max_blob_size"] == 1024
    at_limit = os.urandom(1024)
    assert api.put(f"/blobs/{sha256(at_limit)}", content=at_limit, headers=OCTET).status_code == 201
    before = srv.blob_count()
    big = os.urandom(1025)
    err = assert_error(
        api.put(f"/blobs/{sha256(big)}", content=big, headers=OCTET), 413, "too_large"
    )
    assert "1024" in err["detail"] or "1,024" in err["detail"]
    # Streamed without a Content-Length, the limit still holds.
    huge = [os.urandom(4096) for _ in range(4)]
    r = api.put(f"/blobs/{sha256(b''.join(huge))}", content=iter(huge), headers=OCTET)
    assert_error(r, 413, "too_large")
    assert srv.blob_count() == before
    assert api.missing([sha256(big), sha256(b"".join(huge))]) == [
        sha256(big),
        sha256(b"".join(huge)),
    ]
    assert api.get(f"/blobs/{sha256(big)}").status_code == 404
    srv.close()
