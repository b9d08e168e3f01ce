#!/usr/bin/env python3
"""How long Airflow takes to list a bundle's DAG files, with and without
``[core] dag_discovery_safe_mode``, and with dagship's remembering ``might_contain_dag``.

After every bundle version change, Airflow's DAG processor lists the bundle's files again
(``list_py_file_paths``, in the loop that switches). With safe mode on, its default, it opens
and reads every ``.py`` file to keep only those that mention both "airflow" and "dag"; off, it
lists them by name. With safe mode on and ``[core] might_contain_dag_callable`` set to
``dagship.airflow.discovery.might_contain_dag``, a file is read only when its inode, size or
mtime is new: timed here after a one-file change (a fresh file, as a deploy writes it), the
case of every deploy but the first. The project is the latency benchmark's (``--dags`` files of
1-3 KB, the page cache warm, as it is in a running DAG processor); the three take turns.

Run: python bench/discovery_bench.py [--dags 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from airflow_latency_bench import make_project

REMEMBERED = "safe mode, dagship's might_contain_dag"
MODES = {
    "dag_discovery_safe_mode=True": True,
    "dag_discovery_safe_mode=False": False,
    REMEMBERED: True,
}
CALLABLE = "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE"


@contextlib.contextmanager
def callable_set() -> Iterator[None]:
    """Airflow reads its configuration's environment variables on every lookup."""
    os.environ[CALLABLE] = "dagship.airflow.discovery.might_contain_dag"
    try:
        yield
    finally:
        del os.environ[CALLABLE]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    from airflow.utils.file import list_py_file_paths

    with tempfile.TemporaryDirectory(prefix="dagship-discovery-") as work:
        dags = make_project(Path(work), args.dags).dags
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        found: dict[str, int] = {}
        list_py_file_paths(dags, safe_mode=True)  # the page cache warm for all three
        with callable_set():
            list_py_file_paths(dags, safe_mode=True)  # what a first listing remembers
        changed = next(Path(dags).rglob("*.py"))
        for _ in range(args.repeats):
            for mode, safe in MODES.items():
                fresh = changed.with_suffix(".new")  # a deploy's changed file: a new inode
                fresh.write_bytes(changed.read_bytes() + b"\n")
                os.replace(fresh, changed)
                with callable_set() if mode == REMEMBERED else contextlib.nullcontext():
                    start = time.perf_counter()
                    found[mode] = len(list_py_file_paths(dags, safe_mode=safe))
                    times[mode].append(time.perf_counter() - start)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Listing {args.dags} DAG files, {args.repeats} runs each (load average {load})")
    base = statistics.median(times["dag_discovery_safe_mode=True"])
    for mode in MODES:
        ordered = sorted(times[mode])
        middle = statistics.median(ordered)
        print(
            f"  {mode:<37} median {middle:.3f} s  range {ordered[0]:.3f}-{ordered[-1]:.3f} s"
            f"  ({found[mode]} files, {middle / base:.2f}x safe mode's time)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
