"""Slow clients and disconnects: dropped after DAGSHIP_CLIENT_TIMEOUT, logged as one line."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from dagship.server.settings import Settings, SettingsError
from tests.conftest import ServerFactory
from tests.helpers import Server, sha256


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("home"), extra_env={"DAGSHIP_CLIENT_TIMEOUT": "1"})
    try:
        yield server.start()
    finally:
        server.close()


def _connect(srv: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=30)


def _upload_head(srv: Server, digest: str, length: int) -> bytes:
    return (
        f"PUT /api/v1/blobs/{digest} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{srv.port}\r\n"
        f"Authorization: Bearer {srv.admin_token}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _wait_for_log(srv: Server, start: int, text: str) -> str:
    """The server's log from offset ``start``, once it holds ``text`` (or after 30 s)."""
    deadline = time.monotonic() + 30
    while text not in srv.log()[start:] and time.monotonic() < deadline:
        time.sleep(0.1)
    return srv.log()[start:]


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (within the socket's 30 s timeout)."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_a_client_closing_mid_upload_is_one_info_line(srv: Server) -> None:
    data = b"x" * 200_000
    digest = sha256(data)
    start = len(srv.log())
    with _connect(srv) as sock:
        sock.sendall(_upload_head(srv, digest, len(data)) + data[:50_000])
        time.sleep(0.3)  # the server is reading the body now
    log = _wait_for_log(srv, start, "disconnected before sending all of PUT")

    lines = [line for line in log.splitlines() if "disconnected before sending all" in line]
    assert len(lines) == 1, log
    assert lines[0].startswith("INFO:"), log
    assert f"PUT /api/v1/blobs/{digest}; nothing was stored" in lines[0]
    assert "Traceback" not in log and "unexpected error" not in log, log
    api = srv.api()
    assert api.missing([digest]) == [digest]
    assert api.get("/deployments").status_code == 200
    # The same blob uploads whole afterwards.
    assert api.upload(data) == digest


def test_a_client_that_stalls_mid_upload_is_dropped(srv: Server) -> None:
    data = b"y" * 1000
    digest = sha256(data)
    start = len(srv.log())
    with _connect(srv) as sock:
        sock.sendall(_upload_head(srv, digest, len(data)) + data[:10])
        assert _closed_by_server(sock)
    log = _wait_for_log(srv, start, "disconnected before sending all")
    assert "sent nothing for 1 s in the middle of a request" in log, log
    assert "Traceback" not in log, log
    api = srv.api()
    assert api.missing([digest]) == [digest]
    assert api.get("/deployments").status_code == 200


def test_a_client_that_stops_in_its_headers_is_dropped(srv: Server) -> None:
    start = len(srv.log())
    with _connect(srv) as silent, _connect(srv) as slow:
        slow.sendall(b"GET /api/v1/deployments HTTP/1.1\r\nHost: x\r\n")
        # Both are dropped: one never sent a byte, the other stopped halfway.
        assert _closed_by_server(slow)
        assert _closed_by_server(silent)
    log = _wait_for_log(srv, start, "sent nothing")
    assert log.count("sent nothing for 1 s in the middle of a request") == 1, log
    assert srv.api().get("/deployments").status_code == 200


def test_a_held_long_poll_is_not_a_slow_client(srv: Server) -> None:
    start = len(srv.log())
    api = srv.api()
    name = api.create_deployment()["name"]
    version = api.deploy_files(name, {"a.py": b"one"}).json()["dags_version"]
    # Held three times the client timeout: the request was read, so the wait is the server's.
    answer = api.get(
        f"/deployments/{name}/dags/current",
        headers={"If-None-Match": f'"{version}"'},
        params={"wait": 3},
    )
    assert answer.status_code == 304
    assert "sent nothing" not in srv.log()[start:]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DAGSHIP_CLIENT_TIMEOUT": "soon"}, "DAGSHIP_CLIENT_TIMEOUT: 'soon' is not a duration"),
        ({"DAGSHIP_MAX_CONNECTIONS": "lots"}, "DAGSHIP_MAX_CONNECTIONS must be a number of con"),
        ({"DAGSHIP_MAX_CONNECTIONS": "0"}, "DAGSHIP_MAX_CONNECTIONS must be positive"),
    ],
)
def test_client_timeout_and_max_connections_must_be_valid(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env({"DAGSHIP_HOME": "/nonexistent", **env})


def test_client_timeout_and_max_connections_are_read() -> None:
    env = {"DAGSHIP_CLIENT_TIMEOUT": "2m", "DAGSHIP_MAX_CONNECTIONS": "10000"}
    settings = Settings.from_env(env).with_address("0.0.0.0", 1)
    assert (settings.client_timeout, settings.max_connections) == (120.0, 10000)


def test_requests_beyond_max_connections_get_503(make_server: ServerFactory) -> None:
    srv = make_server("sqlite", env={"DAGSHIP_MAX_CONNECTIONS": "3"})
    api = srv.api()
    held = [_connect(srv) for _ in range(3)]
    try:
        time.sleep(0.5)  # the server has accepted them
        r = api.get("/deployments")
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "server_busy"
        assert r.json()["max_connections"] == 3
        assert "DAGSHIP_MAX_CONNECTIONS" in r.json()["detail"]
        assert r.headers["retry-after"] == "5"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 30
    while (r := api.get("/deployments")).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    assert "over DAGSHIP_MAX_CONNECTIONS (3)" in srv.log()
