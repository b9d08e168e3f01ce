"""What the server writes on disk is its own: private modes whatever the umask and whatever
an existing DAGSHIP_HOME had; and HTTPS with --ssl-certfile/--ssl-keyfile."""

from __future__ import annotations

import contextlib
import os
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerFactory
from tests.helpers import Cli, clean_env, free_port


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_an_existing_home_and_store_become_private(
    make_server: ServerFactory, backend: str
) -> None:
    srv = make_server(backend, start=False)
    with umask(0o022):
        srv.home.mkdir(mode=0o755)
        srv.start()
        srv.api().upload(b"before")
        srv.stop()
        # As an earlier dagship, or an administrator, left them: readable by everyone.
        for path in [srv.home, srv.store, *srv.store.iterdir()]:
            path.chmod(0o755)
        for path in [*srv.home.glob("dagship.db*"), *srv.stored_blob_files().values()]:
            path.chmod(0o644)
        srv.start()
    digest = srv.api().upload(b"after")

    assert mode(srv.home) == 0o700
    assert mode(srv.store) == 0o700 and mode(srv.store / "tmp") == 0o700
    assert mode(srv.stored_blob_files()[digest]) == 0o600
    for path in srv.stored_blob_files().values():
        assert mode(path.parent) == 0o700, path.parent
    assert mode(srv.stored_blob_files()[digest]) == 0o600
    assert mode(srv.home / "admin-token") == 0o600
    database_files = list(srv.home.glob("dagship.db*"))
    assert bool(database_files) == (backend == "sqlite")
    for path in database_files:
        assert mode(path) == 0o600, path


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_the_server_serves_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    port = free_port()
    env = {**clean_env(), "DAGSHIP_HOME": str(tmp_path / "home")}
    log = (tmp_path / "server.log").open("wb")
    argv = ["server", "run", "--port", str(port), "--ssl-certfile", str(cert)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagship", *argv, "--ssl-keyfile", str(key)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                r = httpx.get(url + "/healthz", verify=trusted, timeout=2)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        assert r.status_code == 200
        assert f"listening on {url}" in (tmp_path / "server.log").read_text()
        # Plain HTTP is not served on that port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_tls_options_that_cannot_work_are_refused_before_serving(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    cli = Cli(None, None)
    env = {"DAGSHIP_HOME": str(tmp_path / "home")}
    port = str(free_port())

    alone = cli("server", "--port", port, "--ssl-certfile", str(cert), env=env)
    assert alone.code == 2 and "go together" in alone.err, alone
    (tmp_path / "other.pem").write_text("not a key\n")
    wrong = cli(
        "server", "run", "--port", port, "--ssl-certfile", str(cert),
        "--ssl-keyfile", str(tmp_path / "other.pem"), env=env,
    )  # fmt: skip
    assert wrong.code == 2 and "cannot use --ssl-certfile" in wrong.err, wrong
    assert "Traceback" not in wrong.err
    gone = cli(
        "server", "--port", port, "--ssl-certfile", str(cert),
        "--ssl-keyfile", str(tmp_path / "nope.pem"), env=env,
    )  # fmt: skip
    assert gone.code == 2 and "nope.pem: no such file" in gone.err, gone
    assert key.exists()


def test_server_commands_are_listed(tmp_path: Path) -> None:
    out = Cli(None, None)("server", "--help").ok().out
    for command in ("run", "scrub", "gc", "--ssl-certfile"):
        assert command in out
