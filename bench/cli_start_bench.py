#!/usr/bin/env python3
"""CLI start: wall time of `dagship --version` and `dagship deploy --help` against `python -c pass`.

Each command runs --repeats times as a fresh process (the installed `dagship` script beside this
interpreter, as a user runs it); the figure is the median wall time, and the ratio is against the
interpreter's own start measured in the same run, so a busy machine shows as a higher baseline
rather than a worse dagship. The target (issue 17) is 150 ms for both commands on an idle
machine; the load average is printed beside the figures. With --importtime, the modules that
take the longest to import (``python -X importtime``, cumulative) are listed for each command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def dagship_command() -> list[str]:
    """The `dagship` script installed beside this interpreter, else `python -m dagship`."""
    script = Path(sys.executable).with_name("dagship")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagship"]


# The dagship commands timed, by what a user types: their arguments.
DAGSHIP = {
    "dagship --version": ["--version"],
    "dagship deploy --help": ["deploy", "--help"],
    "dagship --help": ["--help"],
}
TARGETED = ("dagship --version", "dagship deploy --help")


def commands() -> dict[str, list[str]]:
    dagship = dagship_command()
    timed = {"python -c pass": [sys.executable, "-c", "pass"]}
    return timed | {name: [*dagship, *args] for name, args in DAGSHIP.items()}


def wall_ms(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def median_ms(argv: list[str], repeats: int) -> float:
    wall_ms(argv)  # once untimed: the bytecode and the page cache are warm for every run
    return statistics.median(wall_ms(argv) for _ in range(repeats))


def top_importers(args: list[str], count: int) -> list[tuple[str, float]]:
    """The ``count`` imports with the largest cumulative time (ms) of `dagship ARGS`."""
    argv = [sys.executable, "-X", "importtime", "-m", "dagship", *args]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def measure(repeats: int, importtime: bool) -> dict[str, object]:
    figures: dict[str, object] = {"repeats": repeats, "load_average": list(os.getloadavg())}
    medians = {name: median_ms(argv, repeats) for name, argv in commands().items()}
    baseline = medians["python -c pass"]
    figures["commands"] = {
        name: {"median_ms": ms, "ratio": ms / baseline} for name, ms in medians.items()
    }
    if importtime:
        figures["importtime"] = {name: top_importers(args, 8) for name, args in DAGSHIP.items()}
    return figures


def report(figures: dict[str, object]) -> None:
    load = ", ".join(f"{value:.2f}" for value in figures["load_average"])  # type: ignore[attr-defined]
    print(f"CLI start, median of {figures['repeats']} runs (load average {load})")
    for name, row in figures["commands"].items():  # type: ignore[attr-defined]
        target = f"   target {TARGET_MS:.0f} ms" if name in TARGETED else ""
        print(f"  {name:<24} {row['median_ms']:>8.1f} ms  {row['ratio']:>6.1f}x baseline{target}")
    for name, rows in figures.get("importtime", {}).items():  # type: ignore[attr-defined]
        print(f"  slowest imports, {name} (cumulative ms):")
        for module, ms in rows:
            print(f"    {ms:>8.1f}  {module}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per command (median)")
    parser.add_argument("--importtime", action="store_true", help="list the slowest imports")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.repeats, args.importtime)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
