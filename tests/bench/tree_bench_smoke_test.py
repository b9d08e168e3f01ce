"""The tree benchmark runs end to end on a tiny bundle, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "tree_bench.py"


def test_tree_bench_runs_with_a_tiny_bundle() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "30", "--repeats", "2", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["files"] == 32 and figures["runs"] == 2
    # The baseline builds every tree anew; the other mode makes each from the spare.
    assert figures["full"]["reused"] == 0
    assert figures["reuse"]["reused"] == 2
    assert all(t > 0 for mode in ("full", "reuse") for t in figures[mode]["all"])
