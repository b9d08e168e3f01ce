#!/usr/bin/env python3
"""Blob store benchmarks for dagship, each figure next to a baseline measured in the same run.

(a) `POST /blobs/missing` for --blobs stored blobs (each checked on disk: size, and marked as
    used for gc) against the same number of unknown digests (database only), median of
    --repeats; the ratio is what checking the store adds.
(b) scrub (`dagship server scrub`'s function, in this process) over the same store against
    reading and hashing its files here (the floor: scrub must read every byte).
(c) gc --dry-run (`dagship server gc`'s function, in this process) over the same store.

Run: python bench/store_bench.py [--blobs 2000] [--size 4096] [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import Server


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hash_store(root: Path) -> None:
    for path in root.glob("??/*"):
        hashlib.sha256(path.read_bytes()).hexdigest()


def in_process_missing(srv: Server, digests: list[str], repeats: int) -> tuple[float, float]:
    """(database only, database and store check) for `digests`, without HTTP."""
    from dagship.server.db.engine import Database
    from dagship.server.services.blobs import missing_blobs, stored_sizes
    from dagship.server.store.local import LocalBlobStore

    database = Database(srv.database_url or f"sqlite:///{srv.home / 'dagship.db'}")
    store = LocalBlobStore(srv.store)
    try:
        with database.read_session() as session:
            db_s = median_seconds(lambda: stored_sizes(session, digests), repeats)
            checked_s = median_seconds(lambda: missing_blobs(session, store, digests), repeats)
    finally:
        database.dispose()
    return db_s, checked_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per blob")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    srv = Server(Path(tempfile.mkdtemp(prefix="dagship-store-bench-")) / "home").start()
    try:
        http = httpx.Client(
            base_url=srv.url + "/api/v1",
            headers={"Authorization": f"Bearer {srv.admin_token}"},
            timeout=120,
        )
        stored = []
        for _ in range(args.blobs):
            data = os.urandom(args.size)
            digest = hashlib.sha256(data).hexdigest()
            http.put(f"/blobs/{digest}", content=data).raise_for_status()
            stored.append(digest)
        unknown = [hashlib.sha256(os.urandom(8)).hexdigest() for _ in range(args.blobs)]

        def missing(digests: list[str]) -> Callable[[], object]:
            return lambda: http.post("/blobs/missing", json={"digests": digests}).raise_for_status()

        present_s = median_seconds(missing(stored), args.repeats)
        absent_s = median_seconds(missing(unknown), args.repeats)
        print(
            f"(a) /blobs/missing, {args.blobs} stored blobs: {present_s * 1000:.0f} ms; "
            f"{args.blobs} unknown digests: {absent_s * 1000:.0f} ms; "
            f"ratio {present_s / absent_s:.2f}"
        )
        os.environ.update(srv.env())
        from dagship.server.maintenance import collect_garbage, scrub_store

        db_s, checked_s = in_process_missing(srv, stored, args.repeats)
        print(
            f"    in process: the database lookup {db_s * 1000:.0f} ms, with the store check "
            f"{checked_s * 1000:.0f} ms: {(checked_s - db_s) / args.blobs * 1e6:.0f} us per blob"
        )

        megabytes = args.blobs * args.size / 1e6
        scrub_store()  # warm: imports, engine
        scrub_s = median_seconds(scrub_store, args.repeats)
        floor_s = median_seconds(lambda: hash_store(srv.store), args.repeats)
        print(
            f"(b) scrub of {megabytes:.0f} MB in {args.blobs} blobs: {scrub_s:.2f} s; "
            f"hashing them here: {floor_s:.2f} s; ratio {scrub_s / floor_s:.1f}"
        )
        gc_s = median_seconds(lambda: collect_garbage(30 * 86400, dry_run=True), args.repeats)
        print(f"(c) gc --dry-run over {args.blobs} blobs: {gc_s:.2f} s")
    finally:
        srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
