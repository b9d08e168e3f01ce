"""The long-poll benchmark runs end to end with a few waiters, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "long_poll_bench.py"


def test_long_poll_bench_runs_with_a_few_waiters() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--waiters",
            "5",
            "--idle",
            "0.5",
            "--probes",
            "4",
            "--files",
            "3",
            "--json",
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert [row["waiters"] for row in rows] == [0, 5]
    # Every waiter got the new version.
    assert rows[1]["wrong_answers"] == 0
    # Wakes count from the commit's acknowledgement; the server wakes the waiters as it
    # commits, so one may be answered before the bench reads that acknowledgement (a wake of
    # -0.001 s was seen), but never before the commit was sent (3-decimal rounding allowed).
    assert rows[1]["wake_p95_s"] >= rows[1]["wake_p50_s"] >= -rows[1]["commit_s"] - 0.001
    assert all(row["idle_cpu_percent"] >= 0 and row["probe_p95_ms"] > 0 for row in rows)
