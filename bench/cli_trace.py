#!/usr/bin/env python3
"""Run the dagship CLI and write down when each of its steps happened (wall clock).

    python bench/cli_trace.py TRACE.jsonl deploy PROJECT -d NAME --dags --wait --json

Appends JSON lines to TRACE.jsonl, each with ``t`` (``time.time()``) and ``event``:
``python`` (the interpreter is up, before dagship is imported), ``request`` (one per HTTP
request to the dagship server: ``start``, ``t`` its end, ``method``, ``path``, ``status``) and
``done`` (the command returned, before the interpreter shuts down). The caller writes the
process's start and end beside them (bench/airflow_latency_bench.py --trace), so that a run's
time splits into Python's start, imports and scan, each server round trip, the wait's polls,
and exit; Airflow's log has the rest (the bundle's switch, the parse).
"""

from __future__ import annotations

import json
import sys
import time

TRACE = open(sys.argv[1], "a")  # noqa: SIM115 - open until the process exits


def write(event: str, **fields: object) -> None:
    TRACE.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
    TRACE.flush()


write("python")


def main() -> int:
    # httpx is imported by the deploy command anyway; importing it here first only moves
    # its import time from "imports" into this step.
    import httpx

    send = httpx.Client.send

    def traced(self: httpx.Client, request: httpx.Request, **kwargs: object) -> httpx.Response:
        start = time.time()
        response = send(self, request, **kwargs)  # type: ignore[arg-type]
        write(
            "request",
            start=start,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
        )
        return response

    httpx.Client.send = traced  # type: ignore[method-assign]
    from dagship.cli.main import main as dagship

    try:
        return dagship(sys.argv[2:])
    finally:
        write("done")


if __name__ == "__main__":
    sys.exit(main())
