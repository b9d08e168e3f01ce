#!/usr/bin/env python3
"""Where the time of traced deploys goes: the steps of bench/airflow_latency_bench.py --trace.

Reads the ``run`` lines of one or more trace files and prints, as a Markdown table, each step's
median and range in seconds (from the previous step), over every run of each file.

Run: python bench/latency_trace.py TRACE.jsonl [TRACE.jsonl ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

# The steps in the order they happen, and what each one measures from the step before it.
STEPS = {
    "python": "Python started (the process's start)",
    # Since the deployment is asked for during the scan, the scan falls in "committed".
    "first request": "imports (and, before that change, the project's scan)",
    "committed": "the scan and the round trips to the server up to the deploy's commit",
    "ready": "the bundle's listener heard, downloaded, built the tree, filed the requests",
    "switched": "Airflow's loop claimed the requests and switched the bundle",
    "listed": "Airflow listed the bundle's files again",
    "parsed": "the file waited for a parsing process and was parsed (last_parsed_time)",
    "last poll": "--wait's poll that saw it (its end)",
    "exit": "output and the interpreter's exit",
}


def since_previous(run: dict[str, float], name: str) -> float | None:
    """Seconds from the latest earlier step the run has (a bundle that switches before its
    listener had the tree ready logs no "ready") to ``name``; None if the run lacks it."""
    if name not in run:
        return None
    earlier = list(STEPS)[: list(STEPS).index(name)]
    return run[name] - max((run[step] for step in earlier if step in run), default=0.0)


def row(name: str, spans: list[float], what: str) -> str:
    middle, low, high = statistics.median(spans), min(spans), max(spans)
    return f"| {name} | {middle:.2f} s | {low:.2f}-{high:.2f} s | {what} |"


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    for path in map(Path, argv):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        runs = [line["steps"] for line in lines if line["event"] == "run"]
        print(f"\n{path.name}: {len(runs)} runs\n")
        print("| step | median | range | what |\n|---|---|---|---|")
        for name in STEPS:
            spans = [span for run in runs if (span := since_previous(run, name)) is not None]
            if spans:
                print(row(name, spans, STEPS[name]))
        print(row("total", [run["exit"] for run in runs], "the command's start to its exit"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
