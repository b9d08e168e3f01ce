#!/usr/bin/env python3
"""Long-poll benchmark: what held `GET .../dags/current?wait=` requests cost the server.

For each count of waiters (0 is the baseline, measured in the same run), against a real
`dagship server` subprocess:

(a) idle CPU: the server process's CPU time over --idle seconds while the polls are held,
    as a percentage of one core (target for 1,000 waiters: < 5 %);
(b) other requests: p95 latency of GET /healthz and GET /api/v1/deployments/{name} made one
    after another while the polls are held (target: < 100 ms);
(c) wake-up: a deploy is committed; the time from its acknowledgement to each waiter's answer
    with the new version, p50 and p95 (target: p95 < 1 s), and the server's CPU time to answer
    them all ("wake CPU"). The bench's own client shares the machine: on a loaded machine the
    wall times grow with the load, while the server's CPU time says what the server spent.

Before this design (issue 14) each waiter re-read the database every second: 200 waiters took
64-69 % of a core idle; 1,000 took a whole core, other requests took 12-16 s and a deploy
commit 16-22 s.

Run: python bench/long_poll_bench.py [--waiters 200,1000] [--idle 15] [--probes 100]
     [--files 100] [--database-url postgresql+psycopg://...] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

CPU_TARGET_PERCENT = 5.0
PROBE_P95_TARGET_MS = 100.0
WAKE_P95_TARGET_S = 1.0
WAIT_SECONDS = 60
TODAY = "before (issue 14): 200 waiters 64-69 % of a core; 1,000: a whole core, others 12-16 s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(work: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSHIP_")}
    env["DAGSHIP_HOME"] = str(work / "home")
    if database_url:
        env["DAGSHIP_DATABASE_URL"] = database_url
    log = (work / "server.log").open("wb")
    command = [sys.executable, "-m", "dagship", "server", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server did not start:\n" + (work / "server.log").read_text())
        time.sleep(0.1)


async def upload(http: httpx.AsyncClient, files: int, version: int) -> list[dict[str, Any]]:
    """Upload a DAG bundle of ``files`` files, of which the first says ``version``, and return
    its manifest: each answer to a woken poll carries it, as large as a real project's."""
    manifest = []
    for i in range(files):
        content = f"# dag {i}, version {version if i == 0 else 1}\n".encode()
        digest = hashlib.sha256(content).hexdigest()
        (await http.put(f"/api/v1/blobs/{digest}", content=content)).raise_for_status()
        entry = {"path": f"dag_{i:05d}.py", "sha256": digest, "size": len(content)}
        manifest.append({**entry, "executable": False})
    return manifest


async def commit(http: httpx.AsyncClient, name: str, manifest: list[dict[str, Any]]) -> str:
    body = {"kind": "dags", "origin": "cli", "dags_manifest": manifest}
    r = await http.post(f"/api/v1/deployments/{name}/deploys", json=body)
    r.raise_for_status()
    return str(r.json()["dags_version"])


async def held(http: httpx.AsyncClient, name: str) -> int:
    r = await http.get("/api/v1/server/stats")
    r.raise_for_status()
    return int(r.json()["long_polls_waiting"])


async def poll(url: str, token: str, name: str, version: str) -> tuple[float, str]:
    """One long poll on its own raw connection, as a DAG processor holds it (an async HTTP
    client's pool with a thousand connections would measure itself, not the server)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"GET /api/v1/deployments/{name}/dags/current?wait={WAIT_SECONDS} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            f'If-None-Match: "{version}"\r\n\r\n'
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split()[1])
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        field, _, value = line.partition(":")
        if field.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length)
    answered = time.monotonic()
    writer.close()
    return answered, json.loads(body)["version"] if status == 200 else str(status)


async def probes(http: httpx.AsyncClient, name: str, count: int) -> list[float]:
    latencies = []
    for i in range(count):
        path = "/healthz" if i % 2 else f"/api/v1/deployments/{name}"
        started = time.perf_counter()
        (await http.get(path)).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def one_count(
    url: str, token: str, server: psutil.Process, waiters: int, args: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        name = f"bench-{waiters}"
        (await http.post("/api/v1/deployments", json={"name": name})).raise_for_status()
        old = await commit(http, name, await upload(http, args.files, 1))
        base = await held(http, name)
        tasks = [asyncio.create_task(poll(url, token, name, old)) for _ in range(waiters)]
        deadline = time.monotonic() + 120
        while await held(http, name) < base + waiters:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {await held(http, name) - base} of {waiters} polls held")
            await asyncio.sleep(0.2)
        before, started = server.cpu_times(), time.monotonic()
        await asyncio.sleep(args.idle)
        after, elapsed = server.cpu_times(), time.monotonic() - started
        cpu = (after.user + after.system - before.user - before.system) / elapsed * 100
        latencies = await probes(http, name, args.probes)
        manifest = await upload(http, args.files, 2)
        committed_at = time.monotonic()
        new = await commit(http, name, manifest)
        acknowledged, cpu_before = time.monotonic(), server.cpu_times()
        answers = await asyncio.gather(*tasks)
        cpu_after = server.cpu_times()
    wake_cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    wakes = [answered - acknowledged for answered, _ in answers]
    wrong = sum(1 for _, version in answers if version != new)
    figures: dict[str, Any] = {
        "waiters": waiters,
        "idle_cpu_percent": round(cpu, 2),
        "probe_p95_ms": round(p95(latencies), 1),
        "probe_p50_ms": round(statistics.median(latencies), 1),
        "commit_s": round(acknowledged - committed_at, 3),
        "wrong_answers": wrong,
        # The server's CPU time to answer every waiter, from the commit's acknowledgement.
        "wake_cpu_s": round(max(wake_cpu, 0.0), 3),
    }
    if wakes:
        figures["wake_p50_s"] = round(statistics.median(wakes), 3)
        figures["wake_p95_s"] = round(p95(wakes), 3)
    return figures


def report(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = [
        f"{'waiters':>8} {'idle CPU':>10} {'others p50':>11} {'others p95':>11} "
        f"{'commit':>8} {'wake p50':>9} {'wake p95':>9} {'wake CPU':>9}",
    ]
    for row in rows:
        lines.append(
            f"{row['waiters']:>8} {row['idle_cpu_percent']:>9.2f}% {row['probe_p50_ms']:>9.1f}ms "
            f"{row['probe_p95_ms']:>9.1f}ms {row['commit_s']:>7.3f}s "
            f"{row.get('wake_p50_s', 0):>8.3f}s {row.get('wake_p95_s', 0):>8.3f}s "
            f"{row['wake_cpu_s']:>8.3f}s"
        )
    top = rows[-1]
    lines += [
        "",
        f"baseline (0 waiters): idle CPU {base['idle_cpu_percent']:.2f} %, "
        f"others p95 {base['probe_p95_ms']:.1f} ms",
        TODAY,
        f"targets for 1,000: idle CPU < {CPU_TARGET_PERCENT} %, others p95 < "
        f"{PROBE_P95_TARGET_MS:.0f} ms, wake p95 < {WAKE_P95_TARGET_S} s "
        f"(largest run here: {top['waiters']} waiters)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--waiters", default="200,1000", help="comma-separated counts")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of idle measured")
    parser.add_argument("--probes", type=int, default=100, help="other requests per count")
    parser.add_argument("--files", type=int, default=100, help="files in the DAG bundle")
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://user@host/db")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    counts = [0, *(int(n) for n in args.waiters.split(",") if n.strip())]
    with tempfile.TemporaryDirectory(prefix="dagship-poll-bench-") as tmp:
        work = Path(tmp)
        proc, url = start_server(work, args.database_url)
        try:
            token = (work / "home" / "admin-token").read_text().strip()
            server = psutil.Process(proc.pid)
            rows = [asyncio.run(one_count(url, token, server, n, args)) for n in counts]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps({"rows": rows}, indent=2) if args.json else report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
