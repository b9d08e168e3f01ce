#!/usr/bin/env python3
"""The bundle listener's work for a one-file deploy into a --files-file DAG bundle.

What ``DagshipDagBundle._prepare`` does when the listener hears of a new version, timed in
one process without a server (the new file's content comes inline, as in the server's answer):
read the 10,000-entry file list, build and verify the new tree beside the current one, find the
unchanged files that import a changed module, and file the priority parsing requests (Airflow's
tables in a SQLite database). Then ``_switch`` (not timed) makes it current, as ``refresh()``
would. Each run edits one DAG file; every --every-th run also changes a module that one DAG
file in 100 imports.

Modes, taking turns in the same run: ``full`` builds every version's tree anew (a new
directory of --files hard links, then every entry checked), ``reuse`` lets the bundle update a
retired tree in place (``reuse.py``). Before that change existed, ``reuse`` is the same as
``full``.

Run: .venv/bin/python bench/tree_bench.py [--files 10000] [--repeats 10] [--json]
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def dag_source(i: int, mark: str = "") -> bytes:
    helper = "from common.util import today\n" if i % 100 == 0 else ""
    return (
        f"from datetime import datetime\n\nfrom airflow.sdk import dag, task\n{helper}\n\n"
        f'@dag(dag_id="dag_{i}", schedule=None, start_date=datetime(2026, 1, 1))\n'
        f"def dag_{i}():\n    @task\n    def hello() -> str:\n"
        f'        return "hello from {i}"\n\n    hello()\n\n\ndag_{i}()\n{mark}'
    ).encode()


def write_bytecode(root: Path, files: dict[str, bytes]) -> None:
    for path in files:
        folder, _, name = path.rpartition("/")
        cache = root / folder / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / f"{name[:-3]}.cpython-311.pyc").write_bytes(b"bytecode")


def load() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=10, help="runs of each mode")
    parser.add_argument("--every", type=int, default=5, help="change the helper module too")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="after each switch, write a .pyc per Python file into the tree, as Airflow's "
        "parses do (Python writes __pycache__ beside the files it imports)",
    )
    args = parser.parse_args(argv)
    logging.getLogger("dagship").setLevel(logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="dagship-tree-bench-"))
    os.environ["AIRFLOW_HOME"] = str(work / "airflow")
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(work / "bundles")
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{work}/airflow.db"
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.models.errors import ParseImportError

    from airflow import settings
    from dagship.airflow import bundle as bundle_module
    from dagship.airflow import tree as tree_module
    from dagship.airflow.bundle import DagshipDagBundle
    from dagship.core.schemas import DagsCurrentOut

    for model in (DagPriorityParsingRequest, ParseImportError):
        model.__table__.create(settings.engine, checkfirst=True)

    files = {f"team_{i % 50}/dag_{i}.py": dag_source(i) for i in range(args.files)}
    files["common/__init__.py"] = b""
    files["common/util.py"] = b"def today():\n    return 0\n"
    bundle = DagshipDagBundle(name="bench", url="http://127.0.0.1:9", deployment="bench")
    bundle.listen = True  # _prepare() as the listener's thread calls it; no listener started

    def body(contents: dict[str, bytes], inline: dict[str, bytes]) -> DagsCurrentOut:
        listed = [
            {"path": p, "sha256": hashlib.sha256(c).hexdigest(), "size": len(c)}
            for p, c in sorted(contents.items())
        ]
        from dagship.core.manifest import Manifest

        version = Manifest.from_dicts(
            [{**f, "executable": False} for f in listed], portable=False
        ).version
        return DagsCurrentOut.model_validate(
            {
                "deployment": "bench",
                "version": version,
                "deploy_id": "d",
                "seq": 1,
                "files": [{**f, "executable": False} for f in listed],
                "blobs": [
                    {"sha256": hashlib.sha256(c).hexdigest(), "content": base64.b64encode(c)}
                    for c in inline.values()
                ],
            }
        )

    t0 = time.perf_counter()
    for content in files.values():
        digest = hashlib.sha256(content).hexdigest()
        bundle.cache.tmp.mkdir(parents=True, exist_ok=True)
        if not bundle.cache.has(digest):
            bundle.cache.put(digest, content)
    first = body(files, {})
    manifest, version = bundle._manifest_of(first)
    bundle._switch(bundle._build_next(manifest, version, None, []), None)
    say = (lambda *_: None) if args.json else print
    say(f"first tree of {len(files)} files: {time.perf_counter() - t0:.1f} s (load {load():.1f})")

    spent: dict[str, float] = defaultdict(float)

    def timed(owner: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(bundle, "_manifest_of")
    timed(bundle, "_download")
    timed(bundle, "_build_next")
    timed(bundle, "_importers")
    timed(bundle_module, "request_reparse")
    timed(tree_module, "verify")
    collecting: list[float] = []

    def count_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting.append(time.perf_counter())
        elif collecting:
            spent["gc"] += time.perf_counter() - collecting.pop()

    gc.callbacks.append(count_gc)
    if hasattr(bundle_module, "update"):
        timed(bundle_module, "update")  # a tree made from a spare

    @contextmanager
    def mode(name: str) -> Iterator[None]:
        if name == "full" and hasattr(bundle, "_spare"):
            bundle._spare = lambda current: None  # no spare: every tree built anew
        try:
            yield
        finally:
            bundle.__dict__.pop("_spare", None)

    results: dict[str, list[dict[str, float]]] = {"full": [], "reuse": []}
    # Two warm-up deploys per mode: the bundle keeps a tree to reuse from then on.
    order = ["full", "reuse"] * (args.repeats + 2)
    for step, name in enumerate(order, start=1):
        changed = {f"team_{step % 50}/dag_{step}.py": dag_source(step, f"# run {step}\n")}
        if step % args.every == 0:
            changed["common/util.py"] = f"def today():\n    return {step}\n".encode()
        files.update(changed)
        if bundle._warming is not None:
            bundle._warming.join()  # steady state: the current tree's imports are known
        # Each run starts with the garbage collector's generations empty: otherwise a full
        # collection (the 10,000-entry manifests are many objects) lands in whichever mode
        # crosses its threshold. Its time inside the run is counted apart.
        gc.collect()
        with mode(name):
            spent.clear()
            news = body(files, changed)
            before_load = load()
            t = time.perf_counter()
            bundle._prepare(news)
            total = time.perf_counter() - t
        prepared = bundle._prepared
        assert prepared is not None and prepared.plan.version == news.version
        current = tree_module.read_link(bundle.current_link)
        bundle._prepared = None
        bundle._switch(prepared, current, ahead=True)
        # Trees and folders left are deleted on background threads: wait for them, so that
        # each run is timed alone, and count that time apart (it competes for the CPU).
        t = time.perf_counter()
        for thread in threading.enumerate():
            if thread is not threading.current_thread():
                thread.join()
        cleanup = time.perf_counter() - t
        if args.bytecode:
            write_bytecode(bundle.path, files)
        if step > 4:
            reused = 1.0 if "update" in spent else 0.0
            results[name].append(
                {"total": total, "load": before_load, **spent, "reused": reused, "cleanup": cleanup}
            )
        assert (bundle.path / next(iter(changed))).read_bytes() == next(iter(changed.values()))

    summary: dict[str, Any] = {"files": len(files), "runs": args.repeats}
    say(f"one-file deploy into {len(files)} files, median of {args.repeats} runs per mode:")
    for name, runs in results.items():
        keys = ["total", "_manifest_of", "_download", "_build_next", "verify", "_importers"]
        keys += ["request_reparse", "gc", "cleanup"]
        med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
        loads = [r["load"] for r in runs]
        reused = int(sum(r["reused"] for r in runs))
        summary[name] = {**med, "all": [r["total"] for r in runs], "load": loads}
        summary[name]["reused"] = reused
        say(
            f"  {name:6} prepare {med['total']:.3f} s: file list {med['_manifest_of']:.3f}, "
            f"download check {med['_download']:.3f}, tree {med['_build_next']:.3f} "
            f"(verify {med['verify']:.3f}), importers {med['_importers']:.3f}, "
            f"requests {med['request_reparse']:.3f}, of all that garbage collection "
            f"{med['gc']:.3f}; background clean-up after the switch "
            f"{med['cleanup']:.3f}; load {min(loads):.1f}-{max(loads):.1f}; "
            f"{reused} of {len(runs)} made from a spare"
        )
        say("         all: " + ", ".join(f"{r['total']:.3f}" for r in runs))
    full, reuse = summary["full"]["total"], summary["reuse"]["total"]
    say(f"  reuse / full: {reuse / full:.2f}")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
