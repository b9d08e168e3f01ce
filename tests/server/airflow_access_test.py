"""Who chooses a deployment's Airflow URL and which credentials the server sends there, over
HTTP against a real server (SQLite and PostgreSQL) and a stand-in Airflow that records what it
is sent (services/airflow_access.py, docs/api.md "Airflow URLs and credentials")."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from dagship.core.naming import preview_name
from dagship.server.db.migrate import alembic_config
from dagship.server.run import run_server
from tests.conftest import ServerFactory
from tests.helpers import BACKENDS, PG_ADMIN_DSN, Api, Server, assert_error, unique

SERVER_TOKEN = "server-wide-airflow-token-0123"
DAG = b"from airflow.sdk import dag\n\n@dag()\ndef etl():\n    pass\n\netl()\n"
SECRET_PAGE = "INTERNAL-ONLY-PAGE: db password hunter2"


class FakeAirflow:
    """An HTTP server answering the Airflow REST API calls the dagship server makes (empty
    lists), recording each request's path and Authorization header; ``fail`` makes it answer
    500 with ``SECRET_PAGE``, ``not_json`` 200 with it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.fail = False
        self.not_json = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.record(self)
                if fake.fail or fake.not_json:
                    self.answer(500 if fake.fail else 200, SECRET_PAGE.encode(), "text/html")
                    return
                key = "dags" if self.path.split("?")[0].endswith("/dags") else "import_errors"
                self.answer(200, json.dumps({key: [], "total_entries": 0}).encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.record(self, body.decode())
                user = json.loads(body)["username"]
                self.answer(200, json.dumps({"access_token": f"jwt-of-{user}"}).encode())

            def answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def record(self, handler: BaseHTTPRequestHandler, body: str = "") -> None:
        auth = handler.headers.get("Authorization") or ""
        self.seen.append((handler.path, auth, body))

    def auth_headers(self) -> set[str]:
        return {auth for _, auth, _ in self.seen}

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeAirflow, FakeAirflow]]:
    a, b = FakeAirflow(), FakeAirflow()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def deployed(api: Api, name: str) -> str:
    """Deploy one DAG file to ``name``; return the deploy's id."""
    r = api.deploy_files(name, {"etl.py": DAG + name.encode()}, "dags")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def status(api: Api, deploy_id: str) -> dict[str, Any]:
    r = api.get(f"/deploys/{deploy_id}/airflow")
    assert r.status_code == 200, r.text
    return dict(r.json())


def new_preview(api: Api, source: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/previews", json={"source": source, "branch": unique("br"), **fields})
    assert r.status_code == 201, r.text
    return dict(r.json()["preview"])


def test_only_unbound_admins_choose_an_airflow_url(api: Api) -> None:
    source = api.create_deployment(airflow_url="http://airflow-dev.example:8080")["name"]
    operator = api.with_token(api.create_token("operator"))
    branch = unique("br")
    r = operator.post(
        "/previews", json={"source": source, "branch": branch, "airflow_url": "http://10.0.0.1"}
    )
    body = assert_error(r, 403, "airflow_url_admin_only")
    assert "admin" in body["detail"]
    # Nothing changed: no preview, no deployment.
    assert_error(api.get(f"/deployments/{preview_name(branch)}"), 404)
    listed = api.get("/previews", params={"limit": 1000}).json()
    assert preview_name(branch) not in {p["name"] for p in listed}

    before = api.get(f"/deployments/{source}").json()
    assert_error(operator.patch(f"/deployments/{source}", json={"airflow_url": "http://x"}), 403)
    bound = api.with_token(api.create_token("admin", source))
    r = bound.patch(f"/deployments/{source}", json={"airflow_url": "http://10.0.0.1"})
    assert_error(r, 403, "airflow_url_admin_only")
    assert api.get(f"/deployments/{source}").json() == before

    # An admin may give a preview its own URL.
    preview = new_preview(api, source, airflow_url="http://airflow-preview.example/")
    assert preview["airflow_url"] == "http://airflow-preview.example"
    assert preview["airflow_url_from"] == "admin"


def test_a_preview_takes_its_sources_airflow_url(api: Api) -> None:
    source = api.create_deployment(airflow_url="http://airflow-dev.example:8080")
    assert source["airflow_url_from"] == "admin"
    operator = api.with_token(api.create_token("operator"))
    preview = new_preview(operator, source["name"])
    assert preview["airflow_url"] == "http://airflow-dev.example:8080"
    assert preview["airflow_url_from"] == "source"
    got = api.get(f"/deployments/{preview['name']}").json()
    assert (got["airflow_url"], got["airflow_url_from"]) == (preview["airflow_url"], "source")
    # A source without one gives none.
    bare = api.create_deployment()["name"]
    assert new_preview(operator, bare)["airflow_url"] is None


@pytest.mark.parametrize(
    "url",
    [
        "http://host:99999",
        "http://[::1",
        "http://user:secret@host",
        "http://host:0",
        "http://xn--zz",
        "ftp://host",
        "http://ho\x7fst",
    ],
)
def test_an_invalid_airflow_url_is_a_422(api: Api, url: str) -> None:
    name = unique()
    assert_error(api.post("/deployments", json={"name": name, "airflow_url": url}), 422, "invalid")
    assert_error(api.get(f"/deployments/{name}"), 404)
    existing = api.create_deployment()["name"]
    r = api.patch(f"/deployments/{existing}", json={"airflow_url": url})
    assert_error(r, 422, "invalid")
    assert api.get(f"/deployments/{existing}").json()["airflow_url"] is None


@pytest.mark.parametrize(
    "credentials",
    [{"token": "t", "username": "u"}, {"password": "p"}, {"token": ""}, {"tokn": "t"}],
)
def test_bad_credentials_are_a_422_and_never_echoed(api: Api, credentials: Any) -> None:
    name = unique()
    body = {"name": name, "airflow_credentials": credentials}
    r = api.post("/deployments", json=body)
    assert_error(r, 422, "invalid")
    assert_error(api.get(f"/deployments/{name}"), 404)


@pytest.mark.parametrize("backend", BACKENDS)
def test_credentials_go_only_where_an_admin_pointed_and_are_never_returned(
    make_server: ServerFactory, backend: str, fakes: tuple[FakeAirflow, FakeAirflow]
) -> None:
    a, b = fakes
    server = make_server(backend, env={"DAGSHIP_AIRFLOW_TOKEN": SERVER_TOKEN})
    api = server.api()
    own = {"token": "source-own-token-4567"}
    source = api.create_deployment(airflow_url=a.url, airflow_credentials=own)
    assert source["airflow_credentials_set"] is True
    plain = api.create_deployment(airflow_url=b.url)["name"]
    user = api.create_deployment(
        airflow_url=b.url, airflow_credentials={"username": "ops", "password": "pw-8910"}
    )["name"]
    operator = api.with_token(api.create_token("operator"))
    inherited = new_preview(operator, source["name"])
    chosen = new_preview(api, source["name"], airflow_url=b.url)
    deploys = {name: deployed(api, name) for name in (plain, user, inherited["name"])}

    status(api, deploys[plain])
    assert b.auth_headers() == {f"Bearer {SERVER_TOKEN}"}
    b.seen.clear()
    status(api, deploys[user])
    assert b.seen[0][:2] == ("/auth/token", "") and json.loads(b.seen[0][2])["password"] == (
        "pw-8910"
    )
    assert {auth for _, auth, _ in b.seen[1:]} == {"Bearer jwt-of-ops"}
    # The preview on its source's URL uses its source's credentials...
    status(api, deploys[inherited["name"]])
    assert a.auth_headers() == {"Bearer source-own-token-4567"}
    # ...but not on a URL given to it: there, the server's (an admin chose it).
    b.seen.clear()
    status(api, deployed(api, chosen["name"]))
    assert b.auth_headers() == {f"Bearer {SERVER_TOKEN}"}

    _assert_never_returned(api, deploys, ("source-own-token-4567", "pw-8910", SERVER_TOKEN))
    _assert_encrypted_at_rest(server, ("source-own-token-4567", "pw-8910"))
    assert stat.S_IMODE(os.stat(server.home / "secret.key").st_mode) == 0o600


def _assert_never_returned(api: Api, deploys: dict[str, str], secrets: tuple[str, ...]) -> None:
    """No GET answer about these deployments holds a secret."""
    paths = ["/deployments", "/previews", "/tokens"]
    for name, deploy_id in deploys.items():
        paths += [
            f"/deployments/{name}",
            f"/deployments/{name}/deploys",
            f"/deploys/{deploy_id}",
            f"/deploys/{deploy_id}/airflow",
        ]
    for path in paths:
        r = api.get(path)
        assert r.status_code == 200, (path, r.text)
        for secret in secrets:
            assert secret not in r.text, (path, secret)
    openapi = api.http.get(api.url + "/openapi.json").text
    assert not any(secret in openapi for secret in secrets)


def _assert_encrypted_at_rest(server: Server, secrets: tuple[str, ...]) -> None:
    query = "SELECT airflow_credentials FROM deployments WHERE airflow_credentials IS NOT NULL"
    if server.backend == "sqlite":
        with sqlite3.connect(server.home / "dagship.db") as db:
            stored = [row[0] for row in db.execute(query)]
    else:
        dsn = PG_ADMIN_DSN.replace("dbname=test", f"dbname={server.pg_db}")
        with psycopg.connect(dsn) as db:
            stored = [row[0] for row in db.execute(query)]
    assert len(stored) == 2
    for value in stored:
        assert not any(secret in value for secret in secrets)


def test_an_airflow_answer_is_never_echoed(
    make_server: ServerFactory, fakes: tuple[FakeAirflow, FakeAirflow]
) -> None:
    a, _ = fakes
    api = make_server().api()
    name = api.create_deployment(airflow_url=a.url)["name"]
    deploy_id = deployed(api, name)
    for mode in ("fail", "not_json"):
        setattr(a, mode, True)
        found = status(api, deploy_id)
        setattr(a, mode, False)
        assert found["state"] == "waiting" and found["reachable"] is False
        assert name in found["detail"] and a.url in found["detail"], found
        assert "hunter2" not in json.dumps(found) and "INTERNAL" not in json.dumps(found)
    assert "HTTP 500" in status_detail(a, api, deploy_id)


def status_detail(a: FakeAirflow, api: Api, deploy_id: str) -> str:
    a.fail = True
    try:
        return str(status(api, deploy_id)["detail"])
    finally:
        a.fail = False


def test_previews_get_the_servers_url_template_with_their_sources_credentials(
    make_server: ServerFactory, fakes: tuple[FakeAirflow, FakeAirflow]
) -> None:
    a, b = fakes
    template = a.url + "/previews/{name}"
    server = make_server(
        env={"DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE": template, "DAGSHIP_AIRFLOW_TOKEN": "srv"}
    )
    api = server.api()
    source = api.create_deployment(airflow_url=b.url, airflow_credentials={"token": "src-tok"})
    operator = api.with_token(api.create_token("operator"))
    preview = new_preview(operator, source["name"])
    assert preview["airflow_url"] == f"{a.url}/previews/{preview['name']}"
    assert preview["airflow_url_from"] == "template"
    status(api, deployed(api, preview["name"]))
    assert a.seen and all(
        path.startswith(f"/previews/{preview['name']}/api/v2/") for path, _, _ in a.seen
    )
    assert a.auth_headers() == {"Bearer src-tok"}
    assert not b.seen


@pytest.mark.parametrize(
    ("env", "key_file", "message"),
    [
        ({"DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE": "http://{branch}.example"}, None,
         r"unknown placeholder \{branch\}"),
        ({"DAGSHIP_SECRET_KEY": "not-a-key"}, None, "DAGSHIP_SECRET_KEY: key 1 is not a Fernet"),
        ({}, "garbage\n", "secret.key does not hold a Fernet key"),
    ],
)  # fmt: skip
def test_bad_airflow_settings_stop_the_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    key_file: str | None,
    message: str,
) -> None:
    """`dagship server` (run in-process: it stops before serving) exits 2 with the message."""
    for name in [name for name in os.environ if name.startswith("DAGSHIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSHIP_HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if key_file is not None:
        (tmp_path / "secret.key").write_text(key_file)
    assert run_server("127.0.0.1", 0) == 2
    assert re.search(message, capsys.readouterr().err)


def test_credentials_under_another_key_are_reported_not_sent(
    make_server: ServerFactory, fakes: tuple[FakeAirflow, FakeAirflow]
) -> None:
    a, _ = fakes
    server = make_server(env={"DAGSHIP_SECRET_KEY": Fernet.generate_key().decode()})
    api = server.api()
    name = api.create_deployment(airflow_url=a.url, airflow_credentials={"token": "tok-1"})["name"]
    deploy_id = deployed(api, name)
    assert not (server.home / "secret.key").exists()
    server.stop()
    server.extra_env["DAGSHIP_SECRET_KEY"] = Fernet.generate_key().decode()
    api = server.start().api()
    found = status(api, deploy_id)
    assert found["state"] == "no_airflow" and "cannot be decrypted" in found["detail"], found
    assert not a.seen
    # An admin sets them again; then they are used.
    r = api.patch(f"/deployments/{name}", json={"airflow_credentials": {"token": "tok-2"}})
    assert r.status_code == 200 and r.json()["airflow_credentials_set"] is True
    status(api, deploy_id)
    assert a.auth_headers() == {"Bearer tok-2"}
    r = api.patch(f"/deployments/{name}", json={"airflow_credentials": None})
    assert r.json()["airflow_credentials_set"] is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_preview_urls_from_before_are_unconfirmed_and_not_contacted(
    backend: str, tmp_path: Path, fakes: tuple[FakeAirflow, FakeAirflow]
) -> None:
    """Migration 0007: a preview's URL was its creator's choice (any operator), so the server
    stops contacting it until an admin sets it again; deployments' URLs were admins'."""
    a, _ = fakes
    server = Server(tmp_path / "home", backend, {"DAGSHIP_AIRFLOW_TOKEN": SERVER_TOKEN})
    try:
        engine = create_engine(server.database_url or f"sqlite:///{tmp_path / 'home/dagship.db'}")
        (tmp_path / "home").mkdir()
        command.upgrade(alembic_config(engine), "0006")
        rows = [("prod", a.url, None), ("preview-x", a.url, "x"), ("bare", None, None)]
        with engine.begin() as db:
            for number, (name, url, branch) in enumerate(rows, 1):
                db.execute(
                    text(
                        "INSERT INTO deployments (id, name, description, dag_deploys, "
                        "current_seq, created_at, airflow_url, preview_source, preview_branch) "
                        "VALUES (:id, :name, '', true, 0, :now, :url, :source, :branch)"
                    ),
                    {"id": number, "name": name, "now": datetime.now(), "url": url,
                     "source": "prod" if branch else None, "branch": branch},
                )  # fmt: skip
        engine.dispose()
        api = server.start().api()
        found = {d["name"]: d["airflow_url_from"] for d in api.get("/deployments").json()}
        assert found == {"prod": "admin", "preview-x": "unconfirmed", "bare": None}
        deploy_id = deployed(api, "preview-x")
        answer = status(api, deploy_id)
        assert answer["state"] == "no_airflow" and "admin sets it again" in answer["detail"]
        assert not a.seen
        api.patch("/deployments/preview-x", json={"airflow_url": a.url})
        status(api, deploy_id)
        assert a.auth_headers() == {f"Bearer {SERVER_TOKEN}"}
    finally:
        server.close()
