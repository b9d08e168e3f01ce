#!/usr/bin/env python3
"""Where a one-file `dagship deploy` of a large project spends its time, from the CLI's start
to the deploy's commit on the server, against the same figures of another checkout's code.

For each variant (this checkout, and --baseline-src SRC when given: the ``src`` folder of
another checkout, e.g. ``git archive main src | tar -x -C /tmp/base``) a real server is started
(SQLite, or --database-url) with a project of --files DAG files (``deploy_bench.make_project``),
deployed once, left to settle and deployed again so that the scan's hash cache holds every
file. Then, --repeats times, the variants take turns, each changing one DAG file before each of:

- the whole command, ``dagship deploy PROJECT --deployment D --no-parse --json``: its wall time,
  its CPU time (user + system, from ``wait4``) and the server process's CPU time meanwhile
  (``/proc/PID/stat``: Linux only), which the load does not inflate as it does the wall time;
- the same deploy in a fresh process (``PHASES``), timed step by step: imports, the scan, and
  every request to the server (start, end, bytes sent and received); what is left between them
  is the client's own work (choosing the kind, building and encoding the requests).

--src measures a snapshot of this checkout's ``src`` instead (``git archive HEAD src``), so that
editing the checkout meanwhile changes nothing. Figures are medians (and ranges) over the
repeats, with the 1-minute load average at the start and the end of the run. Run:
    .venv/bin/python bench/one_file_deploy_bench.py [--files 10000] [--repeats 5]
        [--src /tmp/this/src] [--baseline-src /tmp/base/src]
        [--database-url postgresql+psycopg://...] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_bench

# Runs the deploy flow as `dagship deploy --no-parse` does, recording when each step happened.
PHASES = r"""
import json, sys, time
wall = time.perf_counter
t0 = wall()
import httpx
send = httpx.Client.send
requests = []
def traced(self, request, **kwargs):
    start = wall()
    response = send(self, request, **kwargs)
    try:
        sent = len(request.content)
    except httpx.RequestNotRead:
        sent = -1
    requests.append({"request": f"{request.method} {request.url.path}", "start": start - t0,
                     "end": wall() - t0, "sent": sent, "received": len(response.content)})
    return response
httpx.Client.send = traced
from dagship.cli.main import _command
_command(["deploy"])
import dagship.flows.deploy as flow
scan = flow.scan_project
marks = {"imports": wall() - t0}
def timed_scan(path):
    start = wall()
    try:
        return scan(path)
    finally:
        marks["scan"] = (start - t0, wall() - t0)
flow.scan_project = timed_scan
from dagship.cli.common import client
with client(None, None) as api:
    result = flow.deploy(api, sys.argv[1], sys.argv[2])
assert result.uploaded_files == 1 and not result.unchanged, result
marks["done"] = wall() - t0
print(json.dumps({"marks": marks, "requests": requests}))
"""


class Variant:
    """One checkout's code: its server, its project and the environment its CLI runs in."""

    def __init__(self, name: str, work: Path, src: Path | None, database_url: str | None):
        self.name = name
        self.bench = deploy_bench.Bench(work)
        env = self.bench.env
        env["DAGSHIP_CACHE_DIR"] = str(work / "cache")
        if src is not None:
            env["PYTHONPATH"] = str(src)
        if database_url:
            env["DAGSHIP_DATABASE_URL"] = database_url
        self.root = work / "project"
        self.whole: list[float] = []
        # CPU seconds (user + system) of the CLI's process and of the server's, per command.
        self.cli_cpu: list[float] = []
        self.server_cpu: list[float] = []
        self.phases: list[dict[str, Any]] = []

    def start(self, files: int) -> None:
        self.bench.start()
        deploy_bench.make_project(self.root, files)
        self.bench.cli("deployment", "create", "one-file")
        self.bench.deploy(self.root, "one-file")

    def settle(self) -> None:
        self.bench.deploy(self.root, "one-file")  # records every file in the hash cache

    def run_whole(self) -> None:
        deploy_bench.change_one_file(self.root, f"{time.time_ns()}")
        command = [*deploy_bench.dagship_command(), "deploy", str(self.root)]
        command += ["--deployment", "one-file", "--no-parse", "--json"]
        server_before = self._server_cpu()
        started = time.perf_counter()
        process = subprocess.Popen(command, env=self.bench.env, stdout=subprocess.PIPE)
        out = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{self.name}: dagship deploy failed")
        found = json.loads(out)
        assert found["uploaded_files"] == 1 and found["unchanged"] is False, found
        self.whole.append(wall)
        self.cli_cpu.append(usage.ru_utime + usage.ru_stime)
        self.server_cpu.append(self._server_cpu() - server_before)

    def _server_cpu(self) -> float:
        """The server process's CPU seconds so far (Linux: /proc/PID/stat)."""
        assert self.bench.server is not None
        fields = Path(f"/proc/{self.bench.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run_phases(self) -> None:
        deploy_bench.change_one_file(self.root, f"{time.time_ns()}")
        command = [sys.executable, "-c", PHASES, str(self.root), "one-file"]
        done = subprocess.run(command, env=self.bench.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: the timed deploy failed:\n{done.stderr[-3000:]}")
        self.phases.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def figures(self) -> dict[str, Any]:
        steps: dict[str, list[float]] = {}
        sizes: dict[str, tuple[int, int]] = {}
        for run in self.phases:
            marks, requests = run["marks"], run["requests"]
            scan_start, scan_end = marks["scan"]
            found = {"imports": marks["imports"], "scan": scan_end - scan_start}
            previous = scan_end
            for request in requests:
                name = _step_name(request["request"])
                if request["start"] >= scan_end:
                    # The deployment is asked for while the scan runs; later requests wait.
                    found[f"client work before {name}"] = request["start"] - previous
                    previous = request["end"]
                found[name] = request["end"] - request["start"]
                sizes[name] = (request["sent"], request["received"])
            found["client work after the last request"] = marks["done"] - previous
            found["total in process"] = marks["done"]
            for step, seconds in found.items():
                steps.setdefault(step, []).append(seconds)
        return {
            "whole_command_s": _summary(self.whole),
            "whole_command_cpu_s": _summary(self.cli_cpu),
            "server_cpu_per_deploy_s": _summary(self.server_cpu),
            "steps_s": {step: _summary(values) for step, values in steps.items()},
            "request_bytes": {name: {"sent": s, "received": r} for name, (s, r) in sizes.items()},
        }


def _step_name(request: str) -> str:
    """``POST /api/v1/blobs/missing`` as ``POST /blobs/missing``; a blob's digest as {digest}."""
    method, path = request.split(" ", 1)
    path = path.replace("/api/v1", "")
    if path.startswith("/blobs/") and len(path) == len("/blobs/") + 64:
        path = "/blobs/{digest}"
    return f"{method} {path}"


def _range(summary: dict[str, float]) -> str:
    return f"{summary['median']:.3f} s ({summary['min']:.3f}-{summary['max']:.3f})"


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def measure(
    work: Path,
    files: int,
    repeats: int,
    baseline: Path | None,
    database_url: str | None,
    src: Path | None = None,
) -> dict[str, Any]:
    variants = [Variant("this checkout", work / "this", src, database_url)]
    second = None
    if baseline is not None:
        second = database_url and _second_database(database_url)
        variants.append(Variant("baseline", work / "baseline", baseline, second))
    try:
        for variant in variants:
            variant.start(files)
        time.sleep(2.5)  # files changed in the 2 s before a scan are not recorded
        for variant in variants:
            variant.settle()
        load = os.getloadavg()[0]
        for _ in range(repeats):
            for variant in variants:
                variant.run_whole()
                variant.run_phases()
        loads = [round(load, 1), round(os.getloadavg()[0], 1)]
    finally:
        for variant in variants:
            variant.bench.stop()
        if second:
            _drop_database(second)
    return {
        "files": files,
        "repeats": repeats,
        "database": "postgresql" if database_url else "sqlite",
        "load_average_1min": loads,
        "variants": {variant.name: variant.figures() for variant in variants},
    }


def _second_database(url: str) -> str:
    """A fresh database beside ``url``'s for the baseline's server (its schema may differ)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = f"{parsed.database}_baseline_{os.getpid()}"
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    _admin(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _admin(url: str, *statements: str) -> None:
    """Run ``statements`` on the ``postgres`` database of ``url``'s server."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=10000, help="DAG files in the project")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each kind per variant")
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src folder")
    parser.add_argument(
        "--src", type=Path, help="the src folder measured as this checkout's (a snapshot of it)"
    )
    parser.add_argument(
        "--database-url", help="a fresh PostgreSQL database for the servers (default SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dagship-one-file-"))
    try:
        figures = measure(
            work, args.files, args.repeats, args.baseline_src, args.database_url, args.src
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    low, high = figures["load_average_1min"]
    print(
        f"One-file deploy of a {figures['files']}-file project ({figures['database']}), "
        f"{figures['repeats']} runs each, taking turns (load average {low}-{high})"
    )
    for name, found in figures["variants"].items():
        whole, cli, server = (
            found[key]
            for key in ("whole_command_s", "whole_command_cpu_s", "server_cpu_per_deploy_s")
        )
        print(
            f"{name}: whole command {_range(whole)}, its CPU {_range(cli)}; "
            f"the server's CPU meanwhile {_range(server)}"
        )
        for step, summary in found["steps_s"].items():
            size = found["request_bytes"].get(step)
            bytes_ = f"  sent {size['sent']:,} B, received {size['received']:,} B" if size else ""
            print(
                f"  {step:<44} {summary['median']:6.3f} s "
                f"({summary['min']:.3f}-{summary['max']:.3f}){bytes_}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
