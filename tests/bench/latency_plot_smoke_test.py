"""The latency plot draws from results files of the shape the latency benchmark writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

BENCH = Path(__file__).resolve().parents[2] / "bench"


def results(dags: int, queue: str) -> dict[str, object]:
    figures = [
        {"system": system, "change": change, "note": "", "times": [1.0 + i / 10 for i in range(5)]}
        for system in ("dagship", "GitDagBundle")
        for change in ("edit", "add")
    ]
    return {
        "date": "2026-12-03T08:00:00Z",
        "load_average": {"start": [1.5, 1.0, 0.5], "end": [1.0, 1.0, 0.5]},
        "dags": dags,
        "parse_queue": queue,
        "figures": figures,
    }


def test_latency_plot_draws_a_png_from_results(tmp_path: Path) -> None:
    files = []
    for dags in (100, 1000):
        for queue in ("idle", "busy"):
            files.append(tmp_path / f"{dags}-{queue}.json")
            files[-1].write_text(json.dumps(results(dags, queue)))
    out = tmp_path / "plot.png"
    done = subprocess.run(
        [sys.executable, str(BENCH / "latency_plot.py"), *map(str, files), "--out", str(out)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "100-idle.json" in done.stdout
