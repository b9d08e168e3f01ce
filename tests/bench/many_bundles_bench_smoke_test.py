"""The many-bundles benchmark runs end to end with a few bundle processes, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "many_bundles_bench.py"


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "downloaded"])
def test_many_bundles_bench_runs_with_a_few_bundles(inline: bool) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--bundles",
            "3",
            "--deploys",
            "1",
            "--idle",
            "0.5",
            "--files",
            "3",
            "--ramp",
            "2",
            "--no-airflow",
            "--json",
            *([] if inline else ["--no-inline"]),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    # Every bundle reached the deployed version (the bench fails otherwise) and reported it.
    assert figures["bundles"] == 3 and figures["inline"] is inline
    assert figures["reach_max_s"] >= figures["reach_p95_s"] >= figures["reach_p50_s"] >= 0
    assert figures["idle_cpu_percent"] >= 0 and figures["client_rss_mib"] > 0
