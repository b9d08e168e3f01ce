"""The materialization benchmark runs end to end on a tiny version, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "materialize_bench.py"


def test_materialize_bench_runs_with_a_tiny_version() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "30", "--size", "300", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    runs = figures["runs"]
    assert figures["files"] == 30 and figures["files_bytes"] > 0
    # The bundle also asks for the deployment's current version: one request more.
    assert runs["bundle, per-blob GET"]["requests"] == 31
    assert runs["bundle, batch"]["requests"] == 2
    assert runs["agent, per-blob GET"]["requests"] == 30
    assert runs["agent, batch"]["requests"] == 1
    assert all(run["seconds"] > 0 and run["wire_bytes"] > 0 for run in runs.values())
    assert runs["agent, batch"]["speedup"] > 0
