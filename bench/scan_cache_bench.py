#!/usr/bin/env python3
"""Scan of an unchanged project, with the hash cache (warm) against without it (cold).

A project of --files DAG files (0.2-6 KB) is scanned --repeats times with an empty cache
(every file read and hashed, then recorded) and again right after (hashes from the cache).
The cold scan is the baseline measured in the same run; the files' content is in the page cache
both times, so the figure is a lower bound of what the cache saves on a cold disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# A file is recorded only when it changed more than this long before the scan (hash_cache.py).
SETTLE_S = 2.5


def make_project(root: Path, files: int) -> None:
    (root / "dags").mkdir(parents=True)
    for i in range(files):
        body = f"# DAG {i}\n" + "x = 1\n" * (40 + i % 1000)
        (root / "dags" / f"dag_{i:05}.py").write_text(body, encoding="utf-8")


def measure(files: int, repeats: int) -> dict[str, object]:
    from dagship.project.scan import scan_project

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        os.environ["DAGSHIP_CACHE_DIR"] = str(cache)
        root = Path(tmp) / "project"
        make_project(root, files)
        time.sleep(SETTLE_S)
        cold, warm = [], []
        for _ in range(repeats):
            shutil.rmtree(cache, ignore_errors=True)
            started = time.perf_counter()
            first = scan_project(root).dags.version
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = scan_project(root).dags.version
            warm.append(time.perf_counter() - started)
            assert first == again, "the cache changed the manifest"
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    return {
        "files": files,
        "repeats": repeats,
        "load_average": list(os.getloadavg()),
        "cold_s": cold_s,
        "warm_s": warm_s,
        "warm_ratio": warm_s / cold_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000, help="DAG files in the project")
    parser.add_argument("--repeats", type=int, default=10, help="timed scans of each kind")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.files, args.repeats)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    load = ", ".join(f"{value:.2f}" for value in figures["load_average"])  # type: ignore[attr-defined]
    print(f"Scan of {args.files} unchanged files, median of {args.repeats} (load average {load})")
    print(f"  cold (no cache, baseline) {figures['cold_s']:>8.3f} s")
    ratio = figures["warm_ratio"]
    print(f"  warm (hash cache)         {figures['warm_s']:>8.3f} s   {ratio:.2f}x cold")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
