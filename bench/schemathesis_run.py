#!/usr/bin/env python3
"""The long schemathesis run against a real dagship server (issue 14).

Starts `dagship server` on a fresh home (SQLite, or --database-url for PostgreSQL), then runs
schemathesis on its /openapi.json with an admin token: every phase (examples, coverage,
fuzzing, stateful), --max-examples per operation, a fresh seed unless --seed is given. Passes
when schemathesis finds no server error and no schema violation and the server logged no
"unexpected error"; prints the seed so a failure can be replayed.

The test suite's bounded run is tests/server/schemathesis_test.py.

Run: python bench/schemathesis_run.py [--max-examples 100] [--seed N]
     [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "allow_header_conformance",
    "missing_required_header",
    "ignored_auth",
    "use_after_free",
)
# Left out: positive_data_acceptance (a request the schema allows may still break a rule JSON
# Schema cannot say, such as "promote to itself") and ensure_resource_availability (its
# guessed links send a created deployment's name where another deployment is expected).


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "DAGSHIP_HOME": str(home)}
    if database_url:
        env["DAGSHIP_DATABASE_URL"] = database_url
    log = (home / "server.log").open("wb")
    command = [sys.executable, "-m", "dagship", "server", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"dagship server did not start:\n{(home / 'server.log').read_text()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    with tempfile.TemporaryDirectory(prefix="dagship-schemathesis-") as tmp:
        home = Path(tmp)
        server, url = start_server(home, args.database_url)
        try:
            token = (home / "admin-token").read_text().strip()
            command = [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                str(args.max_examples),
                "--seed",
                str(seed),
                "--exclude-path",
                "/api/v1/tokens/{token_id}",  # revoking the admin token ends the run
                "--request-timeout",
                "90",
                "--generation-database",
                "none",
            ]
            started = time.monotonic()
            result = subprocess.run(command, cwd=tmp, check=False)
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(30)
        log = (home / "server.log").read_text(errors="replace")
    unexpected = log.count("unexpected error")
    print(f"\nschemathesis: exit {result.returncode} in {elapsed:.0f} s, seed {seed}")
    print(f"server log: {unexpected} unexpected error(s)")
    return 0 if result.returncode == 0 and unexpected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
