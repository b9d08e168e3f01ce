"""The deploy parse benchmark runs end to end on a tiny project, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "deploy_parse_bench.py"


def test_deploy_parse_bench_runs_with_a_tiny_project(tmp_path: Path) -> None:
    env = clean_env()
    env["DAGSHIP_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "3", "--repeats", "1", "--local", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (figures["files"], figures["local"]) == (3, True)
    assert figures["one_file_parse_s"] > 0 and figures["one_file_no_parse_s"] > 0
    assert figures["ratio"] == figures["one_file_parse_s"] / figures["one_file_no_parse_s"]
