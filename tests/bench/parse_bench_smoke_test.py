"""The parse benchmark runs end to end on a tiny corpus, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "parse_bench.py"


def test_parse_bench_runs_with_a_tiny_corpus(tmp_path: Path) -> None:
    env = clean_env()
    env["DAGSHIP_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--files",
            "6",
            "--tables",
            "1",
            "--local",
            "--runs",
            "2",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["dags"] == 6
    assert figures["warm"]["imported"] == ["dags/dag_0000.py"]
    assert figures["cold_speedup"] > 0 and figures["warm_fraction"] > 0
    assert len(figures["runs"]) == 2
    # Each cold parse starts its own forkserver; each warm one reuses it.
    assert [run["cold"]["forkserver_reused"] for run in figures["runs"]] == [False, False]
    assert [run["warm"]["forkserver_reused"] for run in figures["runs"]] == [True, True]
    assert figures["environment"]["reused"] is True
    assert figures["environment"]["reuse_s"] < 2.0
