"""The S3 sync benchmark runs end to end on a tiny prefix, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "s3_sync_bench.py"


def test_s3_bench_runs_with_a_tiny_prefix() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--files", "5", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["first"]["deployed"] and figures["first"]["uploaded_files"] == 5
    # After one change only the changed object is read.
    assert figures["changed"]["read_objects"] == 1
    assert figures["changed"]["read_bytes"] == figures["changed"]["changed_object_bytes"]
    assert figures["unchanged"]["deployed"] is False
