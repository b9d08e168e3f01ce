#!/usr/bin/env python3
"""What hostile bodies cost the server (issue 14 item 2), next to a one-file deploy.

Each case is sent to a fresh `dagship server` (SQLite); the server's CPU time (user + system,
from /proc) and its peak resident memory are read around the request:

(a) no token, a --body-mb MB JSON body: refused with 401 before it is read (the bytes the
    server took before answering are printed);
(b) an admin token, a 100,000-entry manifest with 1 KB paths (--long-mb MB): refused with 413
    from its Content-Length;
(c) an admin token, a 100,000-entry manifest with short paths, under the body limit: accepted
    (201), the largest deploy the default limits allow;
baseline: a one-file deploy on the same server.

--src PATH runs the server from another checkout's src/ (e.g. the main branch before the fix)
for the "before" figures; this tree's is the default.

Run: python bench/input_bench.py [--files 100000] [--body-mb 256] [--src /path/to/src]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
DEPLOYS = "/deployments/bench/deploys"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    token: str

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0


@contextmanager
def server(src: str | None) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="dagship-input-") as home:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        env = {**os.environ, "DAGSHIP_HOME": home}
        if src:
            env["PYTHONPATH"] = src
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagship", "server", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            token = Path(home, "admin-token").read_text().strip()
            yield Server(proc, port, token)
        finally:
            proc.terminate()
            proc.wait(30)


def send(srv: Server, method: str, path: str, body: bytes | int, token: str | None) -> dict:
    """Send a request (``body`` an int: that many bytes of JSON-ish filler, generated as it
    goes); return status, seconds, bytes the server took, its CPU seconds and peak MB."""
    length = body if isinstance(body, int) else len(body)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"{method} /api/v1{path} HTTP/1.1\r\nHost: bench\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    cpu, started, sent = srv.cpu(), time.monotonic(), 0
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(head)
        filler = b" " * (1 << 20)
        try:
            # Stop sending as soon as the server answers: it refused the body unread.
            while sent < length and not select.select([sock], [], [], 0)[0]:
                end = min(length, sent + (1 << 20))
                piece = filler[: end - sent] if isinstance(body, int) else body[sent:end]
                sock.sendall(piece)
                sent = end
        except OSError:
            pass  # the server answered and closed without reading the rest
        sock.settimeout(600)
        answer = sock.recv(65536)
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return {
        "status": status,
        "seconds": time.monotonic() - started,
        "taken_mb": sent / 2**20,
        "cpu": srv.cpu() - cpu,
        "peak_mb": srv.peak_mb(),
    }


def put_blob(srv: Server, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{srv.port}/api/v1/blobs/{digest}",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {srv.token}"},
    )
    urllib.request.urlopen(request).read()
    return digest


def create(srv: Server, name: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{srv.port}/api/v1/deployments",
        data=json.dumps({"name": name}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).read()


def deploy_body(digest: str, paths: Iterator[str]) -> bytes:
    files = [{"path": path, "sha256": digest, "size": 1} for path in paths]
    return json.dumps({"kind": "dags", "dags_manifest": files}).encode()


def run(src: str | None, files: int, body_mb: int) -> None:
    label = src or "this tree"
    with server(src) as srv:
        create(srv, "bench")
        digest = put_blob(srv, b"x")
        base = send(
            srv,
            "POST",
            DEPLOYS,
            deploy_body(digest, iter(["a.py"])),
            srv.token,
        )
        report(label, "baseline: one-file deploy", base, base)
        unauth = send(srv, "POST", DEPLOYS, body_mb << 20, None)
        report(label, f"(a) no token, {body_mb} MB body", unauth, base)
        long_paths = (f"{i:07}/" + "x" * 1000 + ".py" for i in range(files))
        long_body = deploy_body(digest, long_paths)
        big = send(srv, "POST", DEPLOYS, long_body, srv.token)
        report(label, f"(b) {files} files, 1 KB paths, {len(long_body) >> 20} MB", big, base)
        del long_body
    with server(src) as srv:
        create(srv, "bench")
        digest = put_blob(srv, b"x")
        base = send(
            srv,
            "POST",
            DEPLOYS,
            deploy_body(digest, iter(["a.py"])),
            srv.token,
        )
        short_body = deploy_body(digest, (f"dags/team{i % 50}/dag_{i:06}.py" for i in range(files)))
        short = send(srv, "POST", DEPLOYS, short_body, srv.token)
        report(label, f"(c) {files} files, short paths, {len(short_body) >> 20} MB", short, base)


def report(label: str, case: str, result: dict, base: dict) -> None:
    ratio = result["cpu"] / base["cpu"] if base["cpu"] else float("nan")
    print(
        f"{label:>22} | {case:<42} | {result['status']} in {result['seconds']:7.2f} s | "
        f"server took {result['taken_mb']:7.1f} MB | CPU {result['cpu']:6.2f} s "
        f"({ratio:6.0f}x one-file deploy) | peak RSS {result['peak_mb']:6.0f} MB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--body-mb", type=int, default=256)
    parser.add_argument("--src", action="append", default=None, help="repeat to compare trees")
    args = parser.parse_args()
    for src in args.src or [None]:
        run(src, args.files, args.body_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
