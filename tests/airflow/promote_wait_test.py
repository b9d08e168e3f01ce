"""Waiting for a deploy against a real Airflow 3: `dagship promote --wait` reaches the
target's Airflow, which parses exactly the source's DAG version (import errors in a promoted
version fail the command), and `--wait` is answered by a second server process that never saw
the deploy (two processes on one PostgreSQL database and one blob store act as one)."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import pytest

from tests.airflow.conftest import AirflowSetup
from tests.helpers import Cli, dag_source, unique, write

pytestmark = pytest.mark.timeout(420)
# The server runs on PostgreSQL: a second process on its database answers the waits.
DAGSHIP_BACKEND = "postgresql"


def test_promote_wait_reaches_the_targets_airflow(
    airflow_setup: AirflowSetup, tmp_path: Path
) -> None:
    setup = airflow_setup
    prod = setup.deployment  # the deployment this Airflow runs
    dev = unique("dev")
    setup.api.create_deployment(dev)  # no Airflow of its own
    # DAGs only: this Airflow is not run by `dagship agent`, so a promotion that changed the
    # project would wait for an agent.
    project = tmp_path / "project"
    write(project, "dags/promoted.py", dag_source("promoted", "# tested on dev\n"))
    deployed = setup.cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    blobs = setup.server.blob_count()

    result = setup.cli("promote", "--from", dev, "--to", prod, "--wait", "--timeout", "120")
    result.ok()
    assert "Parsed by Airflow" in result.err or "Airflow parsed it" in result.err, result.err
    assert setup.airflow.dag("promoted")["bundle_version"] == deployed["dags_version"]
    assert setup.server.blob_count() == blobs

    # A version that does not import: the promotion happens, the wait reports the error.
    write(project, "dags/promoted.py", dag_source("promoted", "import no_such_module_xyz\n"))
    broken = setup.cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    result = setup.cli(
        "promote", "--from", dev, "--to", prod, "--wait", "--timeout", "120", "--json"
    )
    assert result.code == 1, result.err
    answer = result.json()
    assert answer["dags_version"] == broken["dags_version"]
    assert answer["wait"]["state"] == "failed"
    assert "no_such_module_xyz" in result.err
    assert "promoted.py" in result.err


# What `--wait` and `dagship deploys wait` ask: a deploy (by reference), and where it is in
# Airflow (GET /deploys/{id}/airflow).
_FOLLOWING = re.compile(r"^/api/v1/deploys/[^/?]+(/airflow)?(\?|$)")
# Headers about one connection, not the request: the balancer sets its own.
_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "content-length", "server", "date")
)


class Balancer:
    """A tiny HTTP balancer: sends each request whole to the backend ``route(method, path)``
    names, returns the answer whole, and records (backend, method, path) of each request."""

    def __init__(self, backends: dict[str, str], route: Callable[[str, str], str]) -> None:
        self.backends = {name: urlsplit(url) for name, url in backends.items()}
        self.route = route
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def sent(self, backend: str) -> list[str]:
        """``METHOD path`` of each request sent to ``backend``, in order."""
        with self._lock:
            return [f"{method} {path}" for name, method, path in self.requests if name == backend]

    def __enter__(self) -> Balancer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        name = self.route(method, path)
        target = self.backends[name]
        with self._lock:
            self.requests.append((name, method, path))
        connection = http.client.HTTPConnection(target.hostname or "", target.port, timeout=120)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            def forward_request(self) -> None:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    self.send_error(501, "the test balancer needs a Content-Length")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in _HOP_BY_HOP
                }
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                status, answer_headers, answer = balancer.forward(
                    self.command, self.path, headers, body
                )
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward_request

            def log_message(self, format: str, *args: object) -> None:
                pass  # the balancer's own records are what the test reads

        return Handler


def _following_to_b(method: str, path: str) -> str:
    """Route: following a deploy goes to server B, everything else (uploads, deploys) to A."""
    return "B" if method == "GET" and _FOLLOWING.match(path) else "A"


def test_a_wait_is_answered_by_a_server_that_never_saw_the_deploy(
    airflow_setup: AirflowSetup, tmp_path: Path
) -> None:
    setup = airflow_setup
    # Server A takes the deploys and serves Airflow's bundle; B, a second process on the same
    # database and store, answers every question about where a deploy is.
    second = setup.server.replica()
    try:
        second.start()
        backends = {"A": setup.server.url, "B": second.url}
        with Balancer(backends, _following_to_b) as balancer:
            cli = Cli(balancer.url, setup.server.admin_token)
            project = tmp_path / "project"
            write(project, "dags/balanced.py", dag_source("balanced", "# through A\n"))
            # --allow-removals: the module's other test may have deployed other DAG files.
            deploy = ("deploy", project, "--no-parse", "-d", setup.deployment, "--allow-removals")
            waits = ("--wait", "--timeout", "120", "--json")

            good = cli(*deploy, *waits).ok().json()
            assert good["wait"]["state"] == "parsed", good
            assert "balanced" in good["dags"]
            assert setup.airflow.dag("balanced")["bundle_version"] == good["dags_version"]
            deploys_path = f"/api/v1/deployments/{setup.deployment}/deploys"
            assert f"POST {deploys_path}" in balancer.sent("A")
            assert f"GET /api/v1/deploys/{good['id']}/airflow" in balancer.sent("B")

            # A DAG file that does not import: B reports the error, traceback and all.
            write(project, "dags/balanced.py", dag_source("balanced", "import no_such_xyz\n"))
            result = cli(*deploy, *waits)
            assert result.code == 1, result.err
            broken = result.json()
            assert broken["wait"]["state"] == "failed", broken
            assert [e["filename"] for e in broken["import_errors"]] == ["balanced.py"]
            assert "no_such_xyz" in broken["import_errors"][0]["stack_trace"]
            for needle in ("--- balanced.py", "Traceback", "No module named 'no_such_xyz'"):
                assert needle in result.err, result.err
            assert f"GET /api/v1/deploys/{broken['id']}/airflow" in balancer.sent("B")

            # `dagship deploys wait` finds the deploy by reference through B too.
            ref = f"{setup.deployment}:{broken['seq']}"
            result = cli("deploys", "wait", ref, "--timeout", "120", "--json")
            assert result.code == 1, result.err
            assert result.json()["state"] == "failed"
            assert "No module named 'no_such_xyz'" in result.err
            assert f"GET /api/v1/deploys/{ref}" in balancer.sent("B")
    finally:
        second.stop()
