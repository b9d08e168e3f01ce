"""The unchanged deploy benchmark runs end to end on a tiny project, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "unchanged_deploy_bench.py"


def test_unchanged_deploy_bench_runs_with_a_tiny_project() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "20", "--repeats", "1", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["files"] == 20 and figures["response_bytes"] > 0
    phases = figures["phases"]
    assert {"dagship deploy (whole command)", "python start", "scan", "GET deployment"} <= set(
        phases
    )
    assert all(f["cpu_s"][0] >= 0 and f["wall_s"][1] > 0 for f in phases.values())
