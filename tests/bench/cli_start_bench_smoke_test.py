"""The CLI start benchmark runs end to end, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench" / "cli_start_bench.py"


def test_cli_start_bench_times_every_command_against_the_baseline() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--repeats", "1", "--importtime", "--json"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    timed = figures["commands"]
    assert set(timed) == {
        "python -c pass",
        "dagship --version",
        "dagship deploy --help (rendered)",
        "dagship deploy --help (first)",
        "dagship deploy --help (cached)",
        "dagship --help (rendered)",
        "dagship --help (cached)",
    }
    assert timed["python -c pass"]["ratio"] == 1.0
    assert all(row["median_ms"] > 0 and row["cpu_ms"] > 0 for row in timed.values())
    assert len(figures["load_average"]) == 3
    imports = figures["importtime"]
    assert set(imports) == set(timed) - {"python -c pass", "dagship deploy --help (first)"}
    assert all(rows for rows in imports.values())
    # Rendered, the help imports Typer; from the cache, it does not.
    assert any(module == "typer" for module, _ in imports["dagship deploy --help (rendered)"])
    assert not any(module == "typer" for module, _ in imports["dagship deploy --help (cached)"])
