from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerFactory
from tests.helpers import Server, assert_error, clean_env, free_port


def test_first_start_writes_and_prints_the_admin_token_once(server: Server) -> None:
    token_file = server.home / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("dsh_")
    log = (server.home / "server-1.log").read_text()
    printed = re.search(r"Admin token \(shown once, saved to (.+)\): (dsh_\S+)", log)
    assert printed, log
    assert printed.group(2) == token
    assert str(token_file) in printed.group(1)
    assert f"dagship server listening on http://127.0.0.1:{server.port}" in log
    assert server.api(token).get("/deployments").status_code == 200


def test_healthz_info_and_openapi(server: Server) -> None:
    health = httpx.get(server.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    info = httpx.get(server.url + "/api/v1/info")
    assert info.status_code == 200
    assert info.json()["version"] == health.json()["version"]
    assert isinstance(info.json()["max_blob_size"], int) and info.json()["max_blob_size"] > 0
    spec = httpx.get(server.url + "/openapi.json").json()
    assert any(path.endswith("/deployments/{name}/deploys") for path in spec["paths"])


def test_restart_keeps_the_admin_token_and_prints_no_new_one(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend)
    token = srv.admin_token
    srv.api().create_deployment("kept")
    srv.stop()
    srv.start()
    assert "Admin token" not in srv.log()
    assert (srv.home / "admin-token").read_text().strip() == token
    api = srv.api(token)
    assert [d["name"] for d in api.get("/deployments").json()] == ["kept"]


def test_unknown_route_and_validation_errors_have_the_error_shape(server: Server) -> None:
    api = server.api()
    assert_error(api.get("/deployments/does-not-exist"), 404, "deployment_not_found")
    assert_error(api.post("/deployments", json={"nope": 1}), 422, "invalid")
    assert_error(api.post("/deployments", json={"name": "Bad_Name"}), 422, "invalid")


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    env = {**clean_env(), "DAGSHIP_HOME": str(tmp_path), "DAGSHIP_DATABASE_URL": "mysql://x/y"}
    done = subprocess.run(
        [sys.executable, "-m", "dagship", "server", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "DAGSHIP_DATABASE_URL" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_storage_url_puts_blobs_where_it_says(make_server: ServerFactory, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere" / "store"
    srv = make_server("sqlite", env={"DAGSHIP_STORAGE_URL": store.as_uri()})
    digest = srv.api().upload(b"stored elsewhere")
    assert (store / digest[:2] / digest).read_bytes() == b"stored elsewhere"
    assert not (srv.home / "blobs" / digest[:2] / digest).exists()


def test_sigterm_stops_the_server_at_once_with_long_polls_open(
    make_server: ServerFactory,
) -> None:
    srv = make_server("sqlite")
    api = srv.api()
    name = api.create_deployment()["name"]
    project = {"requirements.txt": b"one"}
    made = api.deploy_files(name, {"a.py": b"one"}, "full", project_files=project).json()
    answers: list[str] = []

    def long_poll(tree: str) -> None:
        version = made["dags_version" if tree == "dags" else "project_version"]
        # Its own client: a connection per poll, as every DAG processor holds one.
        with httpx.Client(base_url=api.http.base_url, headers=api.http.headers) as http:
            try:
                # DAG bundles hold .../dags/current, agents .../project/current.
                r = http.get(
                    f"/deployments/{name}/{tree}/current",
                    headers={"If-None-Match": f'"{version}"'},
                    params={"wait": 30},
                    timeout=60,
                )
                answers.append(str(r.status_code))
            except httpx.TransportError as exc:
                answers.append(type(exc).__name__)

    trees = ("dags", "dags", "project", "project")
    pollers = [threading.Thread(target=long_poll, args=(tree,)) for tree in trees]
    for poller in pollers:
        poller.start()
    time.sleep(1.0)  # every poll is held by the server now
    assert answers == []
    assert srv.proc is not None
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(timeout=30)
    stopped = time.monotonic() - started
    for poller in pollers:
        poller.join(5)
    print(f"stopped {stopped:.2f}s after SIGTERM with 4 long polls open: {answers}")
    # uvicorn ends by raising the signal it caught again: a clean stop on SIGTERM.
    assert code in (0, -signal.SIGTERM), srv.log()
    assert stopped < 2.0, f"took {stopped:.2f}s to stop:\n{srv.log()}"
    # Each poll got its answer (nothing changed: 304) or a closed connection, never a hang.
    assert len(answers) == 4 and not any(p.is_alive() for p in pollers)
    assert set(answers) <= {"304", "RemoteProtocolError", "ReadError"}, answers
