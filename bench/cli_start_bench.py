#!/usr/bin/env python3
"""CLI start: `dagship --version` and `--help` (rendered, cached) against `python -c pass`.

Each command runs --repeats times as a fresh process (the installed `dagship` script beside this
interpreter, as a user runs it), the commands taking turns; the figures are the median wall time
and the median CPU time (user + system, which a busy machine inflates less), and the ratios are
against the interpreter's own start measured in the same run, so a busy machine shows as a higher
baseline rather than a worse dagship. The target (issue 17) is 150 ms for
`--version` and `deploy --help` on an idle machine; the load average is printed beside the
figures.

A help is timed three ways, by where ``$DAGSHIP_CACHE_DIR`` points (src/dagship/cli/help_cache.py):
``rendered`` (a folder that cannot be made: Typer renders it every time, as before the cache),
``first`` (a new empty folder for each run: rendered, then kept) and ``cached`` (a folder that
holds it). With --importtime, the modules that take the longest to import (``python -X
importtime``, cumulative) are listed for each command, so rendered and cached compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 150.0
BASELINE = "python -c pass"


def dagship_command() -> list[str]:
    """The `dagship` script installed beside this interpreter, else `python -m dagship`."""
    script = Path(sys.executable).with_name("dagship")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagship"]


# The dagship commands timed: what a user types, and the help cache it runs with.
DAGSHIP = {
    "dagship --version": (["--version"], "cached"),
    "dagship deploy --help (rendered)": (["deploy", "--help"], "rendered"),
    "dagship deploy --help (first)": (["deploy", "--help"], "first"),
    "dagship deploy --help (cached)": (["deploy", "--help"], "cached"),
    "dagship --help (rendered)": (["--help"], "rendered"),
    "dagship --help (cached)": (["--help"], "cached"),
}
TARGETED = ("dagship --version", "dagship deploy --help (cached)")


class Caches:
    """The ``$DAGSHIP_CACHE_DIR`` of each way a help is timed, in one temporary folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "not-a-folder").write_text("")
        self.runs = 0

    def env(self, mode: str) -> dict[str, str]:
        if mode == "rendered":
            folder = self.root / "not-a-folder" / "cache"
        elif mode == "first":
            self.runs += 1
            folder = self.root / f"first-{self.runs}"
        else:
            folder = self.root / "cached"
        return os.environ | {"DAGSHIP_CACHE_DIR": str(folder)}


def run_ms(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run, in ms."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
    return wall * 1000, used * 1000


def top_importers(args: list[str], env: dict[str, str], count: int) -> list[tuple[str, float]]:
    """The ``count`` imports with the largest cumulative time (ms) of `dagship ARGS`."""
    argv = [sys.executable, "-X", "importtime", "-m", "dagship", *args]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


Timed = dict[str, tuple[list[str], str | None]]  # name → (argv, the help cache it runs with)


def medians_ms(timed: Timed, caches: Caches, repeats: int) -> dict[str, tuple[float, float]]:
    """The median wall and CPU times of each command; the commands take turns, so a change in
    the machine's load falls on all of them alike."""

    def run(argv: list[str], mode: str | None) -> tuple[float, float]:
        return run_ms(argv, caches.env(mode) if mode else None)

    # Once untimed: the bytecode and the page cache are warm for every run (and a cached help
    # is in its cache).
    for argv, mode in timed.values():
        run(argv, mode)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in timed}
    for _ in range(repeats):
        for name, (argv, mode) in timed.items():
            samples[name].append(run(argv, mode))
    return {
        name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()
    }


def measure(repeats: int, importtime: bool) -> dict[str, object]:
    figures: dict[str, object] = {"repeats": repeats, "load_average": list(os.getloadavg())}
    dagship = dagship_command()
    timed: Timed = {BASELINE: ([sys.executable, "-c", "pass"], None)}
    timed |= {name: ([*dagship, *args], mode) for name, (args, mode) in DAGSHIP.items()}
    with tempfile.TemporaryDirectory(prefix="cli-start-") as root:
        caches = Caches(Path(root))
        medians = medians_ms(timed, caches, repeats)
        wall, cpu = medians[BASELINE]
        figures["commands"] = {
            name: {"median_ms": w, "ratio": w / wall, "cpu_ms": c, "cpu_ratio": c / cpu}
            for name, (w, c) in medians.items()
        }
        if importtime:
            figures["importtime"] = {
                name: top_importers(args, caches.env(mode), 8)
                for name, (args, mode) in DAGSHIP.items()
                if mode != "first"
            }
    figures["load_average_after"] = list(os.getloadavg())
    return figures


def report(figures: dict[str, Any]) -> None:
    load = ", ".join(f"{value:.2f}" for value in figures["load_average"])
    after = ", ".join(f"{value:.2f}" for value in figures["load_average_after"])
    print(f"CLI start, median of {figures['repeats']} runs (load average {load}; after: {after})")
    for name, row in figures["commands"].items():
        target = f"   target {TARGET_MS:.0f} ms" if name in TARGETED else ""
        print(
            f"  {name:<34} {row['median_ms']:>7.1f} ms {row['ratio']:>5.1f}x baseline"
            f"   CPU {row['cpu_ms']:>6.1f} ms {row['cpu_ratio']:>5.1f}x{target}"
        )
    for name, rows in figures.get("importtime", {}).items():
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
