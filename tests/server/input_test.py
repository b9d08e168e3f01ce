"""Hostile input over raw HTTP (issue 14): bodies are authenticated before they are read and
bounded, manifests Airflow could never check out are refused, and malformed input is a 4xx
with a code, never a 500. Every refusal changes nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ServerFactory
from tests.helpers import Api, Server, assert_error, entry, sha256, unique

GIB = 1024**3


def deployment(api: Api, **fields: Any) -> str:
    return str(api.create_deployment(unique(), **fields)["name"])


def raw_request(server: Server, head: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """Send ``head`` (and part of a body) on a plain socket and read the answer.

    The answer must come although most of the announced body was never sent: a server that
    waited for the body before answering would hit the socket's timeout instead.
    """
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    header_text, _, payload = data.partition(b"\r\n\r\n")
    status_line, *lines = header_text.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, json.loads(payload)


def _expected(data: bytes) -> int:
    header_text, _, _ = data.partition(b"\r\n\r\n")
    for line in header_text.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(header_text) + 4 + int(line.split(":", 1)[1])
    return len(data) + 1


def post_head(path: str, length: int, token: str | None = None) -> str:
    auth = f"Authorization: Bearer {token}\n" if token else ""
    return (
        f"POST /api/v1{path} HTTP/1.1\nHost: test\n{auth}Content-Type: application/json\n"
        f"Content-Length: {length}\n"
    )


# ------------------------------------------------------------------ item 2: bodies


@pytest.mark.parametrize("token", [None, "dsh_not_a_real_token"])
def test_a_gigabyte_body_without_a_valid_token_is_401_before_it_is_read(
    server: Server, api: Api, token: str | None
) -> None:
    name = deployment(api)
    status, headers, body = raw_request(
        server, post_head(f"/deployments/{name}/deploys", GIB, token), b'{"kind": "dags", '
    )
    assert status == 401
    assert body["code"] == ("token_missing" if token is None else "token_invalid"), body
    assert headers.get("www-authenticate") == "Bearer"
    assert api.deploy_count(name) == 0


def test_a_body_over_the_limit_is_413_before_it_is_read(server: Server, api: Api) -> None:
    name = deployment(api)
    length = 32 * 1024 * 1024 + 1  # the default DAGSHIP_MAX_REQUEST_BYTES, plus one
    head = post_head(f"/deployments/{name}/deploys", length, server.admin_token)
    status, _, body = raw_request(server, head, b'{"kind": ')
    assert status == 413
    assert body["code"] == "request_too_large"
    assert body["max_bytes"] == 32 * 1024 * 1024
    assert "DAGSHIP_MAX_REQUEST_BYTES" in body["detail"]
    assert api.deploy_count(name) == 0


def test_a_streamed_body_is_cut_off_at_the_limit_but_blobs_are_not(
    make_server: ServerFactory,
) -> None:
    server = make_server(env={"DAGSHIP_MAX_REQUEST_BYTES": "65536"})
    api = server.api(server.admin_token)
    name = deployment(api)
    big = b"x" * 200_000
    digest = api.upload(big)  # a blob is bounded by DAGSHIP_MAX_BLOB_SIZE instead

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        manifest = [entry(f"f{i:06}.py", big) for i in range(2000)]
        yield json.dumps({"kind": "dags", "dags_manifest": manifest}).encode()

    r = api.post(f"/deployments/{name}/deploys", content=chunks())
    err = assert_error(r, 413, "request_too_large")
    assert err["max_bytes"] == 65536
    assert api.deploy_count(name) == 0
    small = api.deploy_files(name, {"a.py": big})
    assert small.status_code == 201, small.text
    assert api.get(f"/blobs/{digest}").content == big


def test_a_manifest_over_the_file_limit_is_413(make_server: ServerFactory) -> None:
    server = make_server(env={"DAGSHIP_MAX_MANIFEST_FILES": "10"})
    api = server.api(server.admin_token)
    name = deployment(api)
    api.upload(b"1")
    manifest = [entry(f"f{i}.py", b"1") for i in range(11)]
    r = api.post(f"/deployments/{name}/deploys", json={"kind": "dags", "dags_manifest": manifest})
    err = assert_error(r, 413, "manifest_too_large")
    assert err["max_files"] == 10
    assert "DAGSHIP_MAX_MANIFEST_FILES" in err["detail"]
    assert api.deploy_count(name) == 0
    ok = api.post(
        f"/deployments/{name}/deploys", json={"kind": "dags", "dags_manifest": manifest[:10]}
    )
    assert ok.status_code == 201, ok.text


# ------------------------------------------------------------------ item 4: manifests


def commit(api: Api, name: str, manifest: list[Any], **fields: Any) -> Any:
    return api.post(
        f"/deployments/{name}/deploys", json={"kind": "dags", "dags_manifest": manifest, **fields}
    )


@pytest.mark.parametrize(
    ("paths", "needle"),
    [
        (["dags/Report.py", "dags/report.py"], "only in case or Unicode form"),
        (["caf\u00e9.py", "cafe\u0301.py"], "only in case or Unicode form"),
        (["a" * 256 + ".py"], "longer than 255 bytes"),
        (["C:evil.py"], "drive letter"),
        (["a\x01.py"], "control character"),
        (["a\n.py"], "control character"),
        (["a\r.py"], "control character"),
        (["a\x1b[31m.py"], "control character"),
        (["a\x7f.py"], "control character"),
    ],
)
def test_paths_airflow_cannot_check_out_are_422(api: Api, paths: list[str], needle: str) -> None:
    name = deployment(api)
    manifest = [entry(path, path.encode()) for path in paths]
    for path in paths:
        api.upload(path.encode())
    err = assert_error(commit(api, name, manifest), 422, "bad_manifest")
    assert needle in err["detail"]
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"executable": "no"}, "bad executable"),
        ({"executable": 0}, "bad executable"),
        ({"mode": "0644"}, "unknown keys"),
        ({"sha256": sha256(b"1") + "\n"}, "bad sha256"),
        ({"path": 7}, "non-text path"),
    ],
)
def test_manifest_entries_are_checked_strictly(
    api: Api, change: dict[str, Any], needle: str
) -> None:
    name = deployment(api)
    api.upload(b"1")
    manifest = [entry("a.py", b"1"), {**entry("b.py", b"1"), **change}]
    err = assert_error(commit(api, name, manifest), 422, "bad_manifest")
    assert needle in err["detail"]
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize("origin", ["promote", "s3", "rollback"])
def test_a_client_cannot_claim_a_servers_origin(api: Api, origin: str) -> None:
    name = deployment(api)
    api.upload(b"1")
    err = assert_error(commit(api, name, [entry("a.py", b"1")], origin=origin), 422, "invalid")
    assert "origin" in err["detail"]
    assert api.deploy_count(name) == 0


# ------------------------------------------------------------------ item 5: no 500s


def raw_json(api: Api, method: str, path: str, text: str) -> Any:
    return api.http.request(
        method, path, content=text.encode(), headers={"Content-Type": "application/json"}
    )


def test_lone_surrogates_are_422(api: Api) -> None:
    name = deployment(api)
    api.upload(b"1")
    digest = sha256(b"1")
    in_path = (
        f'{{"kind":"dags","dags_manifest":[{{"path":"a\\ud800.py","sha256":"{digest}","size":1}}]}}'
    )
    err = assert_error(raw_json(api, "POST", f"/deployments/{name}/deploys", in_path), 422)
    assert "UTF-8" in err["detail"]
    manifest = json.dumps([entry("a.py", b"1")])
    in_description = f'{{"kind":"dags","dags_manifest":{manifest},"description":"x\\udfff"}}'
    assert_error(raw_json(api, "POST", f"/deployments/{name}/deploys", in_description), 422)
    in_source = '{"source":"\\ud800","branch":"b"}'
    assert_error(raw_json(api, "POST", "/previews", in_source), 422, "invalid")
    assert api.deploy_count(name) == 0


@pytest.mark.parametrize(
    "field", [{"uploaded_bytes": 2**64}, {"uploaded_files": 2**40}, {"expect_seq": 2**31}]
)
def test_integers_beyond_the_columns_are_422(api: Api, field: dict[str, int]) -> None:
    name = deployment(api)
    api.upload(b"1")
    assert_error(commit(api, name, [entry("a.py", b"1")], **field), 422, "invalid")
    assert api.deploy_count(name) == 0


def test_deploy_numbers_beyond_32_bits_are_4xx(api: Api) -> None:
    name = deployment(api)
    assert api.deploy_files(name, {"a.py": b"a"}).status_code == 201
    r = api.post(f"/deployments/{name}/rollback", json={"to_seq": 2**70})
    assert_error(r, 422, "invalid")
    huge = "9" * 5000
    for ref in (f"{name}:{huge}", f"{name}~{huge}", f"{name}:{2**31}"):
        r = api.get("/diff", params={"from": ref, "to": name})
        assert_error(r, 422, "invalid")
        assert_error(api.get(f"/deploys/{ref}"), 422, "invalid")
    assert api.deploy_count(name) == 1


@pytest.mark.parametrize("idle", ["1e308", "1e400", "Infinity", "NaN", '"5"'])
def test_an_idle_time_beyond_any_clock_is_422(api: Api, idle: str) -> None:
    r = raw_json(api, "POST", "/previews/cleanup", f'{{"idle_seconds": {idle}}}')
    assert_error(r, 422, "invalid")


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://a:b", "http://a:99999", "http://a\x7f", "http://a..b"]
)
def test_an_airflow_url_no_client_can_use_is_422(api: Api, url: str) -> None:
    assert_error(api.post("/deployments", json={"name": unique(), "airflow_url": url}), 422)
    name = deployment(api)
    assert_error(api.patch(f"/deployments/{name}", json={"airflow_url": url}), 422)
    assert api.get(f"/deployments/{name}").json()["airflow_url"] is None


def test_malformed_json_is_400_with_a_code(api: Api) -> None:
    err = assert_error(raw_json(api, "POST", "/deployments", '{"name": '), 400, "malformed_json")
    assert "not valid JSON" in err["detail"]


def test_405_names_every_method_of_the_path(api: Api) -> None:
    name = deployment(api)
    r = api.put(f"/deployments/{name}", json={})
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET, PATCH"
    # A fixed path is not the template next to it: PUT /blobs/missing uploads no blob.
    r = api.put("/blobs/missing", content=b"{}")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
