#!/usr/bin/env python3
"""`dagship s3 sync` of a prefix of N DAG files after one file changed, against a real S3 API
(moto's server mode) and a real dagship server on this machine, beside a baseline measured in
the same run: reading every object of the prefix once (what a sync without a hash cache, or
`aws s3 sync` to an empty folder, has to read).

first       the first sync: every object read and hashed, every blob uploaded, one deploy
changed     the sync after one object changed: the time and the bytes read from S3
            (target: only the changed object)
unchanged   a sync with nothing changed: the listing only, no deploy
listing     one bare ListObjectVersions of the prefix, the floor of any sync
baseline    downloading every object of the prefix once

Run: python bench/s3_sync_bench.py [--files 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from dagship.client.api import ApiClient
from dagship.integrations.s3.sync import sync_prefix
from deploy_bench import Bench, dag_file, free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def start_moto(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (work / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "moto did not start:\n" + (work / "moto.log").read_text()
                ) from None
            time.sleep(0.1)


def fill_bucket(s3: Any, bucket: str, files: int) -> list[str]:
    import random

    rng = random.Random(16)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = []
    for index in range(files):
        key = f"dags/team_{index % 10}/dag_{index:04d}.py"
        s3.put_object(Bucket=bucket, Key=key, Body=dag_file(rng, index, 4000).encode())
        keys.append(key)
    return keys


def read_everything(s3: Any, bucket: str, keys: list[str]) -> tuple[float, int]:
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        sizes = list(
            pool.map(lambda k: len(s3.get_object(Bucket=bucket, Key=k)["Body"].read()), keys)
        )
    return time.perf_counter() - start, sum(sizes)


def timed_listing(s3: Any, bucket: str) -> float:
    """One bare ListObjectVersions of the prefix: the floor of any sync."""
    start = time.perf_counter()
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="dags/")
    for _page in pages:
        pass
    return time.perf_counter() - start


def timed_sync(client: ApiClient, s3: Any, url: str, name: str, cache: Path) -> dict[str, Any]:
    start = time.perf_counter()
    result = sync_prefix(client, url, name, s3=s3, cache_file=cache)
    return {
        "seconds": round(time.perf_counter() - start, 3),
        "deployed": not result.unchanged,
        "read_objects": result.read_objects,
        "read_bytes": result.read_bytes,
        "uploaded_files": result.uploaded_files,
    }


def run(files: int, work: Path) -> dict[str, Any]:
    os.environ.update(CREDENTIALS)
    moto, endpoint = start_moto(work)
    bench = Bench(work)
    try:
        bench.start()
        import boto3

        s3 = boto3.session.Session().client("s3", endpoint_url=endpoint)
        keys = fill_bucket(s3, "bench-dags", files)
        client = ApiClient(bench.url, bench.env["DAGSHIP_API_TOKEN"])
        client.create_deployment("s3bench")
        url, cache = "s3://bench-dags/dags", work / "hashes.json"
        first = timed_sync(client, s3, url, "s3bench", cache)
        changed_key = keys[len(keys) // 2]
        s3.put_object(Bucket="bench-dags", Key=changed_key, Body=b"# changed\nx = 1\n")
        changed = timed_sync(client, s3, url, "s3bench", cache)
        unchanged = timed_sync(client, s3, url, "s3bench", cache)
        base_s, base_bytes = read_everything(s3, "bench-dags", keys)
        listing_s = timed_listing(s3, "bench-dags")
        client.close()
    finally:
        bench.stop()
        moto.terminate()
        moto.wait(10)
    return {
        "files": files,
        "first": first,
        "changed": {**changed, "changed_object_bytes": len(b"# changed\nx = 1\n")},
        "unchanged": unchanged,
        "baseline": {"seconds": round(base_s, 3), "read_bytes": base_bytes},
        "listing_seconds": round(listing_s, 3),
        "changed_vs_baseline_time": round(changed["seconds"] / base_s, 3),
        "changed_vs_baseline_bytes": round(changed["read_bytes"] / base_bytes, 6),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dagship-s3-bench-") as tmp:
        figures = run(args.files, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    changed, base = figures["changed"], figures["baseline"]
    print(f"prefix of {figures['files']} DAG files on moto (S3 API), dagship server on SQLite")
    print(f"first sync      {figures['first']['seconds']:.2f} s")
    print(
        f"one changed     {changed['seconds']:.2f} s, read {changed['read_objects']} object(s), "
        f"{changed['read_bytes']:,} bytes"
    )
    print(f"unchanged       {figures['unchanged']['seconds']:.2f} s, no deploy")
    print(f"listing alone   {figures['listing_seconds']:.2f} s (one ListObjectVersions)")
    print(f"baseline        {base['seconds']:.2f} s to read all {base['read_bytes']:,} bytes")
    print(
        f"one changed / baseline: {figures['changed_vs_baseline_time']:.2f}x the time, "
        f"{figures['changed_vs_baseline_bytes']:.6f}x the bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
