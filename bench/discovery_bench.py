#!/usr/bin/env python3
"""How long Airflow takes to list a bundle's DAG files, with and without
``[core] dag_discovery_safe_mode``.

After every bundle version change, Airflow's DAG processor lists the bundle's files again
(``list_py_file_paths``, in the loop that switches). With safe mode on, its default, it opens
and reads every ``.py`` file to keep only those that mention both "airflow" and "dag"; off, it
lists them by name. The project is the latency benchmark's (``--dags`` files of 1-3 KB, the
page cache warm, as it is in a running DAG processor); the two settings take turns.

Run: python bench/discovery_bench.py [--dags 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from airflow_latency_bench import make_project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    from airflow.utils.file import list_py_file_paths

    with tempfile.TemporaryDirectory(prefix="dagship-discovery-") as work:
        dags = make_project(Path(work), args.dags).dags
        times: dict[bool, list[float]] = {True: [], False: []}
        found: dict[bool, int] = {}
        list_py_file_paths(dags, safe_mode=True)  # the page cache warm for both
        for _ in range(args.repeats):
            for safe in (True, False):
                start = time.perf_counter()
                found[safe] = len(list_py_file_paths(dags, safe_mode=safe))
                times[safe].append(time.perf_counter() - start)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Listing {args.dags} DAG files, {args.repeats} runs each (load average {load})")
    for safe in (True, False):
        ordered = sorted(times[safe])
        print(
            f"  dag_discovery_safe_mode={safe!s:<5}  median {statistics.median(ordered):.3f} s  "
            f"range {ordered[0]:.3f}-{ordered[-1]:.3f} s  ({found[safe]} files)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
