"""The parse cost benchmark runs end to end on a tiny corpus, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "parse_cost_bench.py"


def test_parse_cost_bench_runs_with_a_tiny_corpus(tmp_path: Path) -> None:
    env = clean_env()
    env["DAGSHIP_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "4", "--tables", "1", "--local", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["files"] == 4
    assert set(figures["worker"]["steps_ms"]) == {"stability", "bag", "import", "serialize"}
    assert figures["baseline"]["per_file_ms"] > 0 and figures["worker"]["start_s"] > 0
    assert figures["best_speedup"] > 0
    assert figures["best_speedup_without_serialization"] >= figures["best_speedup"]
