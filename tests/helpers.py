"""Shared test helpers: a real dagship server in a subprocess, the real CLI, project folders.

Tests talk to dagship only the way users do: the `dagship server` process over HTTP and the
`dagship` CLI (in-process through ``dagship.cli.main.main`` for speed, or as a subprocess).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_DSN = os.environ.get(
    "DAGSHIP_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL_TEMPLATE = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
BACKENDS = ("sqlite", "postgresql")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
STARTUP_TIMEOUT = 60.0
# The test servers speak plain http: their clients need no CA bundle, whose loading costs about
# 20 ms of CPU per client (a server's start polled /healthz with a new client every 50 ms).
PLAIN_HTTP = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
# The interpreter of `dagship server`: this one, except when the bundle's tests run inside an
# Airflow environment (tests/compat), which has Airflow but not dagship's server dependencies.
SERVER_PYTHON = os.environ.get("DAGSHIP_TEST_SERVER_PYTHON") or sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unique(prefix: str = "d") -> str:
    """A unique, valid deployment name."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------- databases


def create_pg_database() -> tuple[str, str]:
    """Create a fresh PostgreSQL database; return (name, SQLAlchemy URL).

    PostgreSQL must be up: CI starts it, so an unreachable server is a failure, not a skip.
    """
    import psycopg

    name = f"dagship_t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {PG_ADMIN_DSN!r} ({exc}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        ) from exc
    return name, PG_URL_TEMPLATE.format(db=name)


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- the server


class Server:
    """A real `dagship server` subprocess on a temporary DAGSHIP_HOME and database.

    ``kill()`` sends SIGKILL (a crash); ``start()`` again reuses the same home and database.
    """

    def __init__(
        self,
        home: Path,
        backend: str = "sqlite",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.backend = backend
        self.extra_env = dict(extra_env or {})
        self.pg_db: str | None = None
        self.database_url: str | None = None
        if backend == "postgresql":
            self.pg_db, self.database_url = create_pg_database()
        elif backend != "sqlite":
            raise ValueError(backend)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.admin_token = ""
        # Names the log files: a replica shares the home, so it must not write "server-1.log".
        self.name = "server"

    # -- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> Path:
        return self.home / "blobs"

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}-{self.starts}.log"

    def env(self) -> dict[str, str]:
        env = clean_env()
        env["DAGSHIP_HOME"] = str(self.home)
        if self.database_url:
            env["DAGSHIP_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def start(self) -> Server:
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.home.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.port = free_port()
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                SERVER_PYTHON,
                "-m",
                "dagship",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(timeout=1, verify=PLAIN_HTTP) as probe:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"dagship server exited with {self.proc.returncode}:\n{self.log()}"
                    )
                try:
                    if probe.get(self.url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"dagship server did not answer /healthz:\n{self.log()}")
                time.sleep(0.05)
        token_file = self.home / "admin-token"
        if token_file.exists():
            self.admin_token = token_file.read_text().strip()
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Crash the server: SIGKILL, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart_after_crash(self) -> Server:
        self.kill()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self.pg_db:
            drop_pg_database(self.pg_db)
            self.pg_db = None

    def replica(self) -> Server:
        """Another `dagship server` process (not started) on this one's home and database:
        the same blob store, admin token and secret key, as replicas behind a balancer run.
        Closing it leaves the database to this server."""
        other = Server(self.home, "sqlite", self.extra_env)
        other.backend, other.database_url = self.backend, self.database_url
        other.name = f"{self.name}-replica"
        return other

    # -- convenience

    def api(self, token: str | None = None) -> Api:
        return Api(self.url, self.admin_token if token is None else token)

    def stored_blob_files(self) -> dict[str, Path]:
        """Blobs in the file store (``blobs/ab/<64 hex>``), by digest."""
        found: dict[str, Path] = {}
        if not self.store.exists():
            return found
        for path in self.store.glob("*/*"):
            if path.is_file() and HEX64.match(path.name) and path.parent.name == path.name[:2]:
                found[path.name] = path
        return found

    def blob_count(self) -> int:
        return len(self.stored_blob_files())


# What CI systems set (dagship.integrations.ci reads these): tests run as if outside CI,
# whichever CI system runs them.
CI_MARKERS = ("CI", "TF_BUILD", "CIRCLECI", "DRONE", "JENKINS_URL", "BRANCH_NAME", "GIT_BRANCH")
CI_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "BITBUCKET_", "BUILD_", "SYSTEM_", "CIRCLE_")
CI_PREFIXES += ("CODEBUILD_", "DRONE_", "PROJECT_ID", "BUILD_ID", "_PR_NUMBER", "_HEAD_BRANCH")


def clean_env() -> dict[str, str]:
    # Hermetic: no dagship settings and no CI markers (CI sets origin and branch names).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DAGSHIP_", *CI_PREFIXES)) and k not in CI_MARKERS
    }
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"})
    return env


# --------------------------------------------------------------------------- HTTP API


class Api:
    """A thin httpx wrapper for asserting on the HTTP API directly."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.url + "/api/v1", headers=headers, timeout=30, verify=PLAIN_HTTP
        )

    def with_token(self, token: str | None) -> Api:
        return Api(self.url, token)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.patch(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    # -- domain helpers (each asserts success)

    def create_deployment(self, name: str | None = None, **fields: Any) -> dict[str, Any]:
        name = name or unique()
        r = self.post("/deployments", json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def create_token(self, role: str, deployment: str | None = None, **fields: Any) -> str:
        body: dict[str, Any] = {"role": role, **fields}
        if deployment:
            body["deployment"] = deployment
        r = self.post("/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def upload(self, data: bytes) -> str:
        digest = sha256(data)
        r = self.put(
            f"/blobs/{digest}", content=data, headers={"Content-Type": "application/octet-stream"}
        )
        assert r.status_code in (200, 201), r.text
        return digest

    def deploys(self, name: str) -> list[dict[str, Any]]:
        r = self.get(f"/deployments/{name}/deploys", params={"limit": 1000})
        assert r.status_code == 200, r.text
        return list(r.json())

    def deploy_count(self, name: str) -> int:
        return len(self.deploys(name))

    def missing(self, digests: list[str]) -> list[str]:
        r = self.post("/blobs/missing", json={"digests": digests})
        assert r.status_code == 200, r.text
        return list(r.json()["missing"])

    def manifest(self, version: str) -> dict[str, dict[str, Any]]:
        r = self.get(f"/manifests/{version}")
        assert r.status_code == 200, r.text
        return {f["path"]: f for f in r.json()["files"]}

    def deploy_files(
        self,
        name: str,
        files: Mapping[str, bytes],
        kind: str = "dags",
        project_files: Mapping[str, bytes] | None = None,
        **fields: Any,
    ) -> httpx.Response:
        """Upload files and commit a deploy of ``kind``; return the raw response.

        ``files`` is the tree of the kind (for ``full``: the DAG bundle, and ``project_files``
        the project, by default ``files`` under ``project/``).
        """
        if kind == "full" and project_files is None:
            project_files = {f"project/{path}": data for path, data in files.items()}
        trees = {
            "dags": files if kind in ("dags", "full") else None,
            "project": files if kind == "project" else project_files,
        }
        body: dict[str, Any] = {"kind": kind, "origin": "cli"}
        for tree, content in trees.items():
            if content is None:
                continue
            for data in content.values():
                self.upload(data)
            body[f"{tree}_manifest"] = [entry(p, d) for p, d in sorted(content.items())]
        body.update(fields)
        return self.post(f"/deployments/{name}/deploys", json=body)


def entry(path: str, data: bytes, executable: bool = False) -> dict[str, Any]:
    return {"path": path, "sha256": sha256(data), "size": len(data), "executable": executable}


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the API error shape: status, ``{"detail", "code"}``; return the body."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if code is not None:
        assert body.get("code") == code, body
    return dict(body)


# --------------------------------------------------------------------------- the CLI


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: str
    argv: list[str]

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"`dagship {' '.join(self.argv)}` did not print JSON: {exc}\n"
                f"stdout: {self.out!r}\nstderr: {self.err!r}"
            ) from exc

    def ok(self) -> Result:
        assert self.code == 0, (
            f"`dagship {' '.join(self.argv)}` exited {self.code}\n"
            f"stdout: {self.out}\nstderr: {self.err}"
        )
        return self

    def usage_error(self, *needles: str) -> Result:
        """Assert refused arguments: exit 1 or 2 (Click's usage error), the message on stderr."""
        assert self.code in (1, 2), f"exited {self.code}: {self.out} {self.err}"
        assert "Traceback" not in self.err, self.err
        for needle in needles:
            assert needle.lower() in self.err.lower(), f"{needle!r} not in {self.err!r}"
        return self

    def failed(self, *needles: str) -> Result:
        """Assert a clean failure: exit 1, a message on stderr containing each needle."""
        assert self.code == 1, (
            f"`dagship {' '.join(self.argv)}` exited {self.code}, expected 1\n"
            f"stdout: {self.out}\nstderr: {self.err}"
        )
        assert self.err.strip(), "error message expected on stderr"
        assert "Traceback" not in self.err, self.err
        low = self.err.lower()
        for needle in needles:
            assert needle.lower() in low, f"{needle!r} not in stderr: {self.err!r}"
        return self


_cli_lock = threading.Lock()


@contextlib.contextmanager
def _patched_env(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Cli:
    """Runs the real `dagship` CLI against a server with a given token."""

    def __init__(self, url: str | None, token: str | None, cwd: Path | None = None) -> None:
        self.url = url
        self.token = token
        self.cwd = cwd

    def as_token(self, token: str | None) -> Cli:
        return Cli(self.url, token, self.cwd)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = clean_env()
        if self.url:
            env["DAGSHIP_URL"] = self.url
        if self.token:
            env["DAGSHIP_API_TOKEN"] = self.token
        env.update(extra or {})
        return env

    def __call__(
        self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None, stdin: str = ""
    ) -> Result:
        """In-process: ``dagship.cli.main.main(argv)`` with env set and output captured."""
        from dagship.cli.main import main

        argv = [os.fspath(a) for a in args]
        out, err = io.StringIO(), io.StringIO()
        with _cli_lock, _patched_env(self.env(env)), contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            old_stdin = sys.stdin
            sys.stdin = io.StringIO(stdin)
            old_cwd = os.getcwd()
            if self.cwd:
                os.chdir(self.cwd)
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    err.write(exc.code)
            finally:
                sys.stdin = old_stdin
                os.chdir(old_cwd)
        return Result(int(code or 0), out.getvalue(), err.getvalue(), argv)

    def popen(
        self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "dagship", *[os.fspath(a) for a in args]],
            env=self.env(env),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def run(
        self,
        *args: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
    ) -> Result:
        """As a subprocess: ``python -m dagship ...``."""
        proc = self.popen(*args, env=env)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err, [os.fspath(a) for a in args])


# --------------------------------------------------------------------------- projects


def dag_source(name: str, extra: str = "") -> str:
    return (
        "from datetime import datetime\n\n"
        "from airflow.sdk import dag, task\n\n\n"
        f'@dag(dag_id="{name}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)\n'
        f"def {name}():\n"
        "    @task\n"
        "    def hello() -> str:\n"
        f'        return "hello from {name}"\n\n'
        "    hello()\n\n\n"
        f"{name}()\n{extra}"
    )


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def make_project(
    root: Path, dags: int = 3, include: bool = True, requirements: str = "pendulum>=3\n"
) -> Path:
    """An Astro-style Airflow project: dags/, include/, requirements.txt, Dockerfile.

    Every file carries a marker unique to this call, so content is new to a shared server.
    """
    mark = f"# project {uuid.uuid4().hex}\n"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(dags):
        write(root, f"dags/dag_{i}.py", dag_source(f"dag_{i}", mark))
    if include:
        write(root, "include/sql/report.sql", "select 1;\n" + mark.replace("#", "--"))
        write(root, "include/helpers.py", "def helper() -> int:\n    return 1\n" + mark)
    write(root, "requirements.txt", requirements + mark)
    write(root, "Dockerfile", "FROM apache/airflow:3.1.0\n" + mark)
    return root


def project_paths(root: Path) -> tuple[set[str], set[str]]:
    """(DAG bundle paths relative to dags/, project paths) for a plain project (no ignores)."""
    dags = {
        p.relative_to(root / "dags").as_posix() for p in (root / "dags").rglob("*") if p.is_file()
    }
    project = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("dags/")
    }
    return dags, project


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada Author",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Author",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def deploy_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The deploy in a CLI result that is either a deploy or ``{"unchanged", "deploy"}``."""
    inner = obj.get("deploy")
    return inner if isinstance(inner, Mapping) else obj


class CountingTransport(httpx.BaseTransport):
    """httpx's own transport to a real server, counting requests (``paths``) and the bytes of
    the bodies received as sent (before gzip decoding). ``batches=False`` plays a server from
    before ``POST /blobs/batch``: that request is answered 405, as such a server answers it;
    ``inline=False`` one from before ``?inline=`` on ``.../dags/current``, which it ignores."""

    def __init__(self, batches: bool = True, inline: bool = True) -> None:
        self.inner = httpx.HTTPTransport()
        self.batches = batches
        self.inline = inline
        self.lock = threading.Lock()
        self.paths: list[str] = []
        self.received = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.paths.append(f"{request.method} {request.url.path}")
        if not self.batches and request.url.path == "/api/v1/blobs/batch":
            return httpx.Response(405, json={"detail": "Method Not Allowed"})
        if not self.inline and "inline" in request.url.params:
            request.url = request.url.copy_remove_param("inline")
        response = self.inner.handle_request(request)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CountedStream(response.stream, self),
            extensions=response.extensions,
        )

    def count(self, prefix: str) -> int:
        """Requests whose method and path start with ``prefix``, e.g. ``"GET /api/v1/blobs/"``."""
        return sum(path.startswith(prefix) for path in self.paths)

    def reset(self) -> None:
        self.paths.clear()
        self.received = 0

    def close(self) -> None:
        self.inner.close()


class _CountedStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, counter: CountingTransport) -> None:
        self.stream, self.counter = stream, counter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.stream:
            with self.counter.lock:
                self.counter.received += len(chunk)
            yield chunk

    def close(self) -> None:
        self.stream.close()
