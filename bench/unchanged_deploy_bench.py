#!/usr/bin/env python3
"""Where an unchanged `dagship deploy` of a large project spends its time, phase by phase.

A real server and a project of --files DAG files (``deploy_bench.make_project``), deployed once
and left to settle so the scan's hash cache holds every file. Then, each in a fresh process:

- the whole command, ``dagship deploy PROJECT --deployment D --no-parse --json`` (wall and CPU:
  user + system of the process, from ``wait4``);
- the same steps timed one by one (``PHASES``): Python's start, importing the CLI and the deploy
  command (Typer, Rich), importing the deploy flow (httpx, Pydantic and the API's models), the
  scan (hash cache warm), the client, the ``GET /api/v1/deployments/{name}`` round trip and its
  response's size, reading it into the API's model, printing the --json document;
- the baseline, ``python -c pass``.

On a shared machine the wall time is mostly waiting for a core, so the CPU time is given beside
it, and each figure is the range over --repeats runs.
Run: .venv/bin/python bench/unchanged_deploy_bench.py [--files 10000] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_bench

# Python's start is measured by the baseline; the phases start at the script's first line.
PHASES = r"""
import json, os, sys, time
cpu, wall = time.process_time, time.perf_counter
marks = [("python start", cpu(), wall())]
def mark(name): marks.append((name, cpu(), wall()))
from dagship.cli.main import _command
_command(["deploy"])
mark("import CLI, deploy command")
from dagship.flows.deploy import DeployResult, deploy
mark("import deploy flow")
from dagship.project.scan import scan_project
scanned = scan_project(sys.argv[1])
versions = (scanned.dags.version, scanned.project.version)
mark("scan")
from dagship.cli.common import client, print_json
api = client(None, None)
mark("client")
response = api._http.get(f"/api/v1/deployments/{sys.argv[2]}")
mark("GET deployment")
from dagship.core.schemas import DeploymentOut
target = DeploymentOut.model_validate_json(response.content)
mark("read response")
assert (target.current.dags_version, target.current.project_version) == versions
stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
print_json(DeployResult(target.current, True).to_dict())
sys.stdout = stdout
mark("print JSON")
phases = {n: (c - c0, w - w0) for (_, c0, w0), (n, c, w) in zip(marks, marks[1:])}
print(json.dumps({"phases": phases, "response_bytes": len(response.content)}))
"""


def run_timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one process, and its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, out


def measure(work: Path, files: int, repeats: int) -> dict[str, Any]:
    bench = deploy_bench.Bench(work)
    bench.env["DAGSHIP_CACHE_DIR"] = str(work / "cache")
    try:
        bench.start()
        root = deploy_bench.make_project(work / "project", files)
        bench.cli("deployment", "create", "unchanged")
        bench.deploy(root, "unchanged")
        time.sleep(2.5)  # files changed in the 2 s before a scan are not recorded
        bench.deploy(root, "unchanged")  # records every file in the hash cache
        deploy = [*deploy_bench.dagship_command(), "deploy", str(root)]
        deploy += ["--deployment", "unchanged", "--no-parse", "--json"]
        phases = [sys.executable, "-c", PHASES, str(root), "unchanged"]
        baseline = [sys.executable, "-c", "pass"]
        load = os.getloadavg()[0]
        runs: dict[str, list[tuple[float, float]]] = {}
        response_bytes = 0
        for _ in range(repeats):
            wall, cpu, out = run_timed(deploy, bench.env)
            assert json.loads(out)["unchanged"] is True, out
            runs.setdefault("dagship deploy (whole command)", []).append((wall, cpu))
            wall, cpu, _ = run_timed(baseline, bench.env)
            runs.setdefault("python start", []).append((wall, cpu))
            _, _, out = run_timed(phases, bench.env)
            found = json.loads(out)
            response_bytes = found["response_bytes"]
            for name, (cpu, wall) in found["phases"].items():
                runs.setdefault(name, []).append((wall, cpu))
    finally:
        bench.stop()
    return {
        "files": files,
        "repeats": repeats,
        "response_bytes": response_bytes,
        "phases": {
            name: {
                "wall_s": [round(min(w for w, _ in v), 3), round(max(w for w, _ in v), 3)],
                "cpu_s": [round(min(c for _, c in v), 3), round(max(c for _, c in v), 3)],
            }
            for name, v in runs.items()
        },
        "load_average_1min": [round(load, 1), round(os.getloadavg()[0], 1)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=10000, help="DAG files in the project")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes of each kind")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dagship-unchanged-"))
    try:
        figures = measure(work, args.files, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    low, high = figures["load_average_1min"]
    print(
        f"Unchanged deploy of {args.files} files, {args.repeats} runs (load average {low}-{high});"
        f" GET deployment response: {figures['response_bytes']:,} bytes"
    )
    print(f"  {'phase':<32} {'wall (s)':>14} {'CPU (s)':>14}")
    for name, f in figures["phases"].items():
        wall, cpu = f["wall_s"], f["cpu_s"]
        print(f"  {name:<32} {wall[0]:6.3f}-{wall[1]:<7.3f} {cpu[0]:6.3f}-{cpu[1]:<7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
