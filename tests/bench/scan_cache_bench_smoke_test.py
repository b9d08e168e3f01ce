"""The scan cache benchmark runs end to end on a tiny project, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "scan_cache_bench.py"


def test_scan_cache_bench_runs_with_a_tiny_project() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "20", "--repeats", "1", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["files"] == 20
    assert figures["cold_s"] > 0 and figures["warm_s"] > 0 and figures["warm_ratio"] > 0
