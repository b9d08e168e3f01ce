#!/usr/bin/env python3
"""First materialization of a version: every blob downloaded, one GET each against batches.

Starts a real dagship server (local blob store, SQLite), deploys --files files of about
--size bytes (Python source with varied names, so gzip meets text like a real project's),
then materializes that version from an empty cache four times, each with its own cache:

  bundle, per-blob GET   DagshipDagBundle.initialize() as before batches (the baseline)
  bundle, batch          the same with POST /blobs/batch (1000 blobs a request, gzipped)
  agent, per-blob GET    ProjectTrees.materialize() (what `dagship agent` runs) as before
  agent, batch           the same with batches

For each: wall time, HTTP requests, bytes received on the wire (after TLS-free HTTP framing,
before gzip decoding) against the files' size. The target is <= 5 s for the batch paths.

Run: .venv/bin/python bench/materialize_bench.py [--files 10000] [--size 2000] [--json]
     [--profile] [--check]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_S = 5.0


def source_file(i: int, size: int, rng: random.Random) -> bytes:
    lines = [f'"""Module {i}: generated for the materialization benchmark."""\n', "\n"]
    while sum(map(len, lines)) < size:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(10))
        lines.append(f"{name}_{i} = compute({rng.randrange(10**6)}, '{rng.randbytes(4).hex()}')\n")
    return "".join(lines).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=2000, help="bytes per file, about")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile the batch bundle run")
    parser.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_S} s")
    parser.add_argument(
        "--batch-only", action="store_true", help="skip the per-blob baselines (for profiling)"
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dagship-materialize-bench-"))
    os.environ["AIRFLOW_HOME"] = str(work / "airflow")
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(work / "bundles")
    from tests.helpers import Server, entry, unique

    server = Server(work / "home").start()
    try:
        api = server.api()
        rng = random.Random(17)
        files = {
            f"team_{i % 50}/module_{i}.py": source_file(i, args.size, rng)
            for i in range(args.files)
        }
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(api.upload, files.values()))
        name = unique("bench")
        api.create_deployment(name)
        manifest = [entry(path, data) for path, data in sorted(files.items())]
        r = api.post(
            f"/deployments/{name}/deploys", json={"kind": "dags", "dags_manifest": manifest}
        )
        assert r.status_code == 201, r.text
        os.environ["DAGSHIP_API_TOKEN"] = server.admin_token
        total = sum(map(len, files.values()))
        runs = {}
        for path in ("bundle", "agent"):
            for mode in ("batch",) if args.batch_only else ("per-blob GET", "batch"):
                profile = args.profile and path == "bundle" and mode == "batch"
                runs[f"{path}, {mode}"] = _run(server, name, work, path, mode == "batch", profile)
        figures = _figures(args, total, runs)
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            _print(figures)
        slowest = max(runs[f"{path}, batch"]["seconds"] for path in ("bundle", "agent"))
        return 1 if args.check and slowest > TARGET_S else 0
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def _run(
    server: Any, name: str, work: Path, path: str, batch: bool, profile: bool
) -> dict[str, Any]:
    from tests.helpers import CountingTransport

    from dagship.agent.home import AgentHome
    from dagship.agent.project_tree import ProjectTrees
    from dagship.airflow.bundle import DagshipDagBundle
    from dagship.client.api import ApiClient
    from dagship.core.manifest import Manifest

    # The bundle's "switched to version" lines would land among the figures on stdout.
    logging.getLogger("dagship").setLevel(logging.WARNING)
    counter = CountingTransport()
    client = ApiClient(server.url, server.admin_token, timeout=10.0, transport=counter)
    profiler = cProfile.Profile() if profile else None
    label = f"{path}-{'batch' if batch else 'get'}"
    if path == "bundle":
        bundle = DagshipDagBundle(name=label, url=server.url, deployment=name, listen=False)
        bundle._client = client
        bundle.cache.batches = batch
        run = bundle.initialize
    else:
        current = client.current_dags(name, None)
        assert current is not None
        manifest = Manifest.from_dicts((f.model_dump() for f in current.files), portable=False)
        home = AgentHome(work / label)
        home.prepare()
        trees = ProjectTrees(home)
        trees.cache.batches = batch

        def run() -> None:
            trees.materialize(manifest, client)

        counter.reset()  # the manifest is not part of the download
    if profiler:
        profiler.enable()
    t0 = time.perf_counter()
    run()
    seconds = time.perf_counter() - t0
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    client.close()
    return {"seconds": seconds, "requests": len(counter.paths), "wire_bytes": counter.received}


def _figures(args: argparse.Namespace, total: int, runs: dict[str, Any]) -> dict[str, Any]:
    for path in ("bundle", "agent"):
        base, batch = runs.get(f"{path}, per-blob GET"), runs[f"{path}, batch"]
        if base:
            batch["speedup"] = base["seconds"] / batch["seconds"]
    for run in runs.values():
        run["wire_ratio"] = run["wire_bytes"] / total
    return {
        "files": args.files,
        "files_bytes": total,
        "target_s": TARGET_S,
        "load": os.getloadavg()[0],
        "runs": runs,
    }


def _print(figures: dict[str, Any]) -> None:
    print(
        f"first materialization of {figures['files']} files, {figures['files_bytes'] / 1e6:.1f} MB"
        f" (load average {figures['load']:.2f}):"
    )
    for label, run in figures["runs"].items():
        speedup = f"  {run['speedup']:.1f}x faster" if "speedup" in run else ""
        print(
            f"  {label:20} {run['seconds']:6.2f} s  {run['requests']:6} requests  "
            f"{run['wire_bytes'] / 1e6:6.1f} MB on the wire ({run['wire_ratio']:.2f} of the "
            f"files' size){speedup}"
        )
    print(f"  target for the batch paths: <= {figures['target_s']} s")


if __name__ == "__main__":
    raise SystemExit(main())
