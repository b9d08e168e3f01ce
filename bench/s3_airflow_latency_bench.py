#!/usr/bin/env python3
"""Bucket event → DAG parsed in a real Airflow, for DAG files deployed from S3.

A prefix of --dags DAG files in a real S3 API (moto's server mode) is deployed to a real
Airflow 3 (`airflow standalone`, SQLite) on the dagship DAG bundle. Each run edits one
object (`PutObject`), hands the Lambda handler the S3 event for it (in this process, as AWS
would call it), and polls Airflow's REST API until the DAG of that file shows the new content
at the deploy's bundle version. Timed from the `PutObject` call to that moment: p50 and p95
over --runs runs, beside the published figures of the managed services (not measured here):
MWAA syncs its bucket about every 30 s; Astro's S3 Lambda template about 1 minute.

Run: python bench/s3_airflow_latency_bench.py [--dags 50] [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import dagship.local.airflow as runtime
from airflow_latency_bench import Airflow, airflow_settings, dag_source
from dagship.client.api import ApiClient
from dagship.core.naming import bundle_name
from deploy_bench import SEED, Bench, free_port
from s3_sync_bench import CREDENTIALS, start_moto

DEPLOYMENT = "s3latency"
PUBLISHED = {"MWAA (bucket sync, documented)": 30.0, "Astro S3 Lambda template": 60.0}


def event(bucket: str, key: str) -> dict[str, Any]:
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }
    return {"Records": [record]}


def fill(s3: Any, dags: int) -> None:
    s3.create_bucket(Bucket="latency")
    for index in range(dags):
        source = dag_source(random.Random(SEED + index), f"s3_{index:04d}", 0)
        s3.put_object(Bucket="latency", Key=f"dags/dag_{index:04d}.py", Body=source.encode())


def handler_env(bench: Bench, endpoint: str, work: Path) -> None:
    os.environ.update(
        {
            "DAGSHIP_URL": bench.url,
            "DAGSHIP_API_TOKEN": bench.env["DAGSHIP_API_TOKEN"],
            "DAGSHIP_DEPLOYMENT": DEPLOYMENT,
            "DAGSHIP_S3_URL": "s3://latency/dags",
            "DAGSHIP_S3_ENDPOINT_URL": endpoint,
            "DAGSHIP_CACHE_DIR": str(work / "cache"),
        }
    )


def one_run(s3: Any, client: ApiClient, af: Airflow, dags: int, attempt: int) -> float:
    from dagship.integrations.s3 import lambda_handler

    index = (attempt * 37 + 5) % dags
    dag_id, key, rev = f"s3_{index:04d}", f"dags/dag_{index:04d}.py", attempt + 1
    source = dag_source(random.Random(SEED + index), dag_id, rev)
    start = time.perf_counter()
    s3.put_object(Bucket="latency", Key=key, Body=source.encode())
    result = lambda_handler(event("latency", key))
    version = client.get_deploy(result["deploy_id"]).dags_version
    af.rest.wait_for(lambda: af.rest.parsed(dag_id, rev, version), 300, key)
    took = time.perf_counter() - start
    print(f"  {key}: {took:.2f}s", file=sys.stderr, flush=True)
    return took


def run(work: Path, dags: int, runs: int) -> list[float]:
    os.environ.update(CREDENTIALS)
    moto, endpoint = start_moto(work)
    bench = Bench(work / "dagship")
    bench.work.mkdir()
    try:
        bench.start()
        import boto3

        from dagship.integrations.s3 import lambda_handler

        s3 = boto3.session.Session().client("s3", endpoint_url=endpoint)
        fill(s3, dags)
        port = free_port()
        bench.cli("deployment", "create", DEPLOYMENT, "--airflow-url", runtime.airflow_url(port))
        created = json.loads(bench.cli("token", "create", "--role", "viewer", "--json")[1])
        token = str(created.get("token") or created.get("secret"))
        handler_env(bench, endpoint, work)
        lambda_handler(event("latency", "dags/dag_0000.py"))
        env = runtime.airflow_env(bench.work / "airflow-home", port, bench.url, DEPLOYMENT, token)
        client = ApiClient(bench.url, bench.env["DAGSHIP_API_TOKEN"])
        with Airflow(bench.work, "s3", airflow_settings(env, 300), port) as af:
            af.rest.wait_all(bundle_name(DEPLOYMENT), dags, 1800)
            return [one_run(s3, client, af, dags, attempt) for attempt in range(runs)]
    finally:
        bench.stop()
        moto.terminate()
        moto.wait(10)


def figures(times: list[float], dags: int) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "dags": dags,
        "runs": len(times),
        "p50_s": round(statistics.median(times), 2),
        "p95_s": round(ordered[max(0, -(-len(ordered) * 95 // 100) - 1)], 2),
        "times_s": [round(t, 2) for t in times],
        "published_s": PUBLISHED,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dags", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dagship-s3-latency-") as tmp:
        result = figures(run(Path(tmp), args.dags, args.runs), args.dags)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    p50, p95 = result["p50_s"], result["p95_s"]
    print(f"bucket event -> DAG parsed, {result['runs']} runs, {result['dags']} DAG files")
    print(f"dagship (S3 + Lambda handler)  p50 {p50:.2f} s, p95 {p95:.2f} s")
    for name, seconds in PUBLISHED.items():
        print(f"{name:<30} ~{seconds:.0f} s ({seconds / p50:.0f}x dagship's p50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
