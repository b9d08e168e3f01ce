#!/usr/bin/env python3
"""DAG bundle benchmark: materialize a new version with one changed file out of --files.

Starts a real dagship server, deploys --files DAG files, lets a DagshipDagBundle materialize
them, then changes one file, deploys again and times ``bundle.refresh()`` (conditional GET,
one blob download, tree build from the cache with hard links, verification, atomic switch).
Baselines measured in the same run on the same tree: a full copy (``shutil.copytree``), what
a bundle that copies each version would pay, and a hard-link-only rebuild (``os.link`` per
file, no network, no verification).

Run: .venv/bin/python bench/bundle_bench.py [--files 10000] [--repeats 5] [--check]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_S} s")
    parser.add_argument("--profile", action="store_true", help="cProfile the first refresh")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dagship-bundle-bench-"))
    os.environ["AIRFLOW_HOME"] = str(work / "airflow")
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(work / "bundles")
    from tests.helpers import Cli, Server, dag_source, write

    from dagship.airflow.bundle import DagshipDagBundle

    server = Server(work / "home").start()
    try:
        cli = Cli(server.url, server.admin_token)
        project = work / "project"
        for i in range(args.files):
            write(project, f"dags/team_{i % 50}/dag_{i}.py", dag_source(f"dag_{i}"))
        cli("deployment", "create", "bench").ok()
        t0 = time.perf_counter()
        cli("deploy", project, "--deployment", "bench", "--dags").ok()
        print(f"first deploy of {args.files} files: {time.perf_counter() - t0:.1f} s")

        os.environ["DAGSHIP_API_TOKEN"] = server.admin_token
        bundle = DagshipDagBundle(name="bench", url=server.url, deployment="bench")
        t0 = time.perf_counter()
        bundle.initialize()
        print(f"first materialization (all blobs downloaded): {time.perf_counter() - t0:.2f} s")

        refresh_times, copy_times, link_times = [], [], []
        for run in range(args.repeats):
            write(project, "dags/team_0/dag_0.py", dag_source("dag_0", f"# run {run}\n"))
            cli("deploy", project, "--deployment", "bench", "--dags").ok()
            profiler = cProfile.Profile() if args.profile and run == 0 else None
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            bundle.refresh()
            refresh_times.append(time.perf_counter() - t0)
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            tree = bundle.path.resolve()
            t0 = time.perf_counter()
            shutil.copytree(tree, work / f"copy-{run}")
            copy_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _link_tree(tree, work / f"links-{run}")
            link_times.append(time.perf_counter() - t0)
            shutil.rmtree(work / f"copy-{run}")
            shutil.rmtree(work / f"links-{run}")
        refresh = statistics.median(refresh_times)
        copy = statistics.median(copy_times)
        link = statistics.median(link_times)
        print(f"new version, 1 of {args.files} files changed (median of {args.repeats}):")
        print(f"  dagship bundle refresh()        {refresh:.3f} s  (target <= {TARGET_S} s)")
        print(f"  baseline: full copy of the tree {copy:.3f} s  -> ratio {refresh / copy:.2f}")
        print(f"  baseline: hard links only       {link:.3f} s  -> ratio {refresh / link:.2f}")
        print(f"  all runs: {', '.join(f'{t:.3f}' for t in refresh_times)}")
        return 1 if args.check and refresh > TARGET_S else 0
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    for dirpath, _dirs, files in os.walk(src):
        target = dst / Path(dirpath).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.link(os.path.join(dirpath, name), target / name)


if __name__ == "__main__":
    raise SystemExit(main())
