"""The benchmark script runs end to end on a tiny project, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deploy_bench.py"


def test_bench_runs_with_a_tiny_size() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--files",
            "30",
            "--big-files",
            "60",
            "--repeats",
            "1",
            "--json",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["upload"]["uploaded_files"] == 1
    assert 0 < figures["upload"]["ratio"] < 1
    assert figures["wall"]["unchanged_s"] > 0 and figures["wall"]["cli_startup_s"] > 0
