"""The one-file deploy benchmark runs end to end on a tiny project, against a baseline, so it
cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "one_file_deploy_bench.py"


def test_one_file_deploy_bench_runs_with_a_tiny_project() -> None:
    command = [sys.executable, str(BENCH), "--files", "20", "--repeats", "1", "--json"]
    # This checkout's code as its own baseline: the run takes the baseline's path all the same.
    command += ["--baseline-src", str(ROOT / "src")]
    done = subprocess.run(
        command, env=clean_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["files"] == 20 and figures["database"] == "sqlite"
    assert set(figures["variants"]) == {"this checkout", "baseline"}
    for found in figures["variants"].values():
        assert found["whole_command_s"]["max"] > 0 and found["server_cpu_per_deploy_s"]["min"] >= 0
        assert {"imports", "scan", "POST /blobs/missing", "PUT /blobs/{digest}"} <= set(
            found["steps_s"]
        )
        assert found["request_bytes"]["PUT /blobs/{digest}"]["sent"] > 0
