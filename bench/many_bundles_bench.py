#!/usr/bin/env python3
"""Many-bundles benchmark: --bundles processes following one deployment, as Celery workers do.

Against a real `dagship server` subprocess (SQLite, or --database-url), with a small DAG
project deployed, it starts --bundles separate Python processes (ramped up --ramp at a time).
Each runs the DAG bundle's own code path for following a deployment: the bundle's
``DeployListener`` (airflow/listener.py) holding a long poll on ``GET .../dags/current``, and
on news the bundle's materialization steps (airflow/bundle.py ``_install``: missing blobs into
its ``BlobCache``, those the answer carried inline (``?inline=``) and the others downloaded,
the tree built with hard links by ``tree.build``, verified, renamed into place, the
``current`` link swapped) into its own folder, on the listener's thread before it listens again,
as the bundle's ``_prepare`` does. They do not import Airflow: a process that
imports ``dagship.airflow.bundle`` (and so Airflow) costs the RSS printed as "with Airflow",
too much for hundreds on one machine; the bundle's Airflow parts (``BaseDagBundle``'s lock
and its reparse requests) are therefore not exercised here. Each process reports on one
shared pipe the ``time.monotonic()`` (system-wide on Linux) at which it had each version.

Measured, with 0 held polls as the baseline in the same run:
(a) the server's idle CPU (psutil cpu_times) over --idle seconds, % of one core (target < 5 %);
(b) --deploys deploys of one changed file: from the commit's response to each bundle having
    the new version in its ``current`` tree; p50, p95, max over all (target: p95 < 2 s); the
    server's CPU and the bundle processes' CPU per deploy;
(c) the server's RSS with 0 and with --bundles polls held: memory per held poll; and each
    bundle process's RSS and USS.

Run: python bench/many_bundles_bench.py [--bundles 200] [--deploys 10] [--idle 20]
     [--files 20] [--ramp 10] [--database-url postgresql+psycopg://...] [--no-inline] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from dagship.airflow.listener import LISTEN_SECONDS
from dagship.core.schemas import MAX_INLINE_BYTES
from long_poll_bench import start_server

CPU_TARGET_PERCENT = 5.0
REACH_P95_TARGET_S = 2.0
DEPLOYMENT = "many"
TIMEOUT_S = 120.0
# The bundle's pause after a failed refresh and its clients' timeout (airflow/bundle.py, not
# imported from there: that module imports Airflow).
RETRY_SECONDS = 2.0
API_TIMEOUT_SECONDS = 10.0


# --------------------------------------------------------------------------- one bundle


def follow(url: str, deployment: str, root: Path, inline: int) -> None:
    """One bundle process: listen, materialize each new version, report it on stdout; ask for
    up to ``inline`` bytes of the new files in the answer (``?inline=``)."""
    from dagship.airflow.blobcache import BlobCache
    from dagship.airflow.listener import LISTEN_SECONDS, DeployListener
    from dagship.airflow.tree import ManifestStore
    from dagship.client.api import ApiClient

    token = os.environ.get("DAGSHIP_API_TOKEN")
    # The bundle's two clients: the listener's (long timeout) and the one fetching blobs.
    listen = ApiClient(url, token, timeout=LISTEN_SECONDS + API_TIMEOUT_SECONDS)
    api = ApiClient(url, token, timeout=API_TIMEOUT_SECONDS)
    # Kept for the process's life, as a bundle keeps them: the manifests of the versions it
    # built stay in memory.
    cache, manifests = BlobCache(root / "cache"), ManifestStore(root / "manifests")
    lock = threading.Lock()
    version: str | None = None

    def take(body: Any) -> None:
        """Materialize ``body``'s version unless it is the one we have. Called, as the bundle's
        ``_prepare`` is, on the listener's thread before it listens again."""
        nonlocal version
        with lock:
            if body.version == version:
                return
            try:
                version = materialize(root, api, body, cache, manifests)
            except Exception as exc:  # the bundle keeps its version; refresh() tries again
                print(f"bundle {os.getpid()}: {exc}; again in {RETRY_SECONDS} s", file=sys.stderr)
                return
        # One short line, written whole: lines of all bundles share one pipe.
        os.write(1, f"have {os.getpid()} {version} {time.monotonic():.6f}\n".encode())

    def fetch(etag: str | None, wait: float) -> Any:
        return listen.current_dags(deployment, etag, wait, inline=inline)

    listener = DeployListener(fetch, f"bench-{os.getpid()}", on_news=take)
    listener.start(None)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    parent = os.getppid()
    while os.getppid() == parent:  # never outlive the benchmark
        # What refresh() does after a failed preparation: the version heard of, again.
        time.sleep(RETRY_SECONDS)
        if (body := listener.news(version)) is not None:
            take(body)


def materialize(root: Path, api: Any, body: Any, cache: Any, manifests: Any) -> str:
    """What ``DagshipDagBundle._install`` does with a version the listener heard of."""
    from dagship.airflow.blobcache import BundleError
    from dagship.airflow.tree import (
        BuildPlan,
        build,
        read_link,
        remove_tree,
        swap_link,
        unique_name,
        version_of,
    )
    from dagship.core.manifest import Manifest

    trees, tmp, link = root / "trees", root / "tmp", root / "current"
    manifest = Manifest.from_dicts((f.model_dump() for f in body.files), portable=False)
    if manifest.version != body.version:
        raise BundleError(f"version {body.version} does not match its files")
    current = read_link(link)
    previous = manifests.load(version_of(current)) if current else None
    inline = [(blob.sha256, blob.content) for blob in body.blobs]
    downloaded = cache.receive(cache.missing(manifest.entries), inline, api)
    plan = BuildPlan(
        manifest,
        manifest.version,
        cache,
        previous_root=trees / current if current and previous else None,
        previous=previous,
        downloaded=downloaded,
    )
    name = unique_name(manifest.version)
    staging = tmp / unique_name(manifest.version)
    build(plan, staging)
    manifests.save(manifest, manifest.version)
    trees.mkdir(parents=True, exist_ok=True)
    os.rename(staging, trees / name)
    swap_link(link, f"{trees.name}/{name}", tmp)
    keep = {name, current or name}
    for path in trees.iterdir():
        if path.name not in keep:
            remove_tree(path, background=True)
    return manifest.version


# --------------------------------------------------------------------------- the server side


def p95(values: list[float]) -> float:
    """The 95th percentile, within the values measured (never above the largest)."""
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


def deploy(http: httpx.Client, files: int, revision: int) -> str:
    """Deploy ``files`` DAG files of which the first says ``revision``; its DAG version."""
    manifest = []
    for i in range(files):
        content = f"# dag {i}, revision {revision if i == 0 else 0}\n".encode()
        digest = hashlib.sha256(content).hexdigest()
        if i == 0 or revision == 0:
            (http.put(f"/api/v1/blobs/{digest}", content=content)).raise_for_status()
        manifest.append(
            {"path": f"dag_{i:03d}.py", "sha256": digest, "size": len(content), "executable": False}
        )
    body = {"kind": "dags", "origin": "cli", "dags_manifest": manifest}
    r = http.post(f"/api/v1/deployments/{DEPLOYMENT}/deploys", json=body)
    r.raise_for_status()
    return str(r.json()["dags_version"])


def held(http: httpx.Client) -> int:
    r = http.get("/api/v1/server/stats")
    r.raise_for_status()
    return int(r.json()["long_polls_waiting"])


def wait_held(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while (now := held(http)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {now} of {count} long polls held after {TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def idle(server: psutil.Process, seconds: float) -> tuple[float, int]:
    """The server's CPU over ``seconds``, % of one core, and its RSS at the end."""
    before, started = server.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = server.cpu_times(), time.monotonic() - started
    used = after.user + after.system - before.user - before.system
    return max(used, 0.0) / elapsed * 100, server.memory_info().rss


class Reports:
    """The bundles' lines, read from their shared pipe by a thread."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._cond = threading.Condition()
        # version -> {pid: monotonic time it was materialized}
        self.have: dict[str, dict[int, float]] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._fd, 65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            with self._cond:
                for line in lines:
                    _, pid, version, at = line.decode().split()
                    self.have.setdefault(version, {})[int(pid)] = float(at)
                self._cond.notify_all()

    def wait(self, version: str, count: int) -> dict[int, float]:
        deadline = time.monotonic() + TIMEOUT_S
        with self._cond:
            while len(self.have.get(version, {})) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self.have.get(version, {}))
                    raise SystemExit(f"only {got} of {count} bundles reached {version}")
                self._cond.wait(left)
            return dict(self.have[version])


def start_bundles(
    args: Any, url: str, token: str, work: Path, reports: Reports, write_fd: int, version: str
) -> list[subprocess.Popen[bytes]]:
    """Start the bundles ``args.ramp`` at a time, each batch once the last has the version;
    all in one process group, so one signal ends them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSHIP_")}
    env["DAGSHIP_API_TOKEN"] = token
    inline = "0" if args.no_inline else str(MAX_INLINE_BYTES)
    procs: list[subprocess.Popen[bytes]] = []
    while len(procs) < args.bundles:
        for _ in range(min(args.ramp, args.bundles - len(procs))):
            root = work / "bundles" / str(len(procs))
            group = procs[0].pid if procs else 0
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--follow", url, DEPLOYMENT, str(root), inline],
                    env=env,
                    stdout=write_fd,
                    stdin=subprocess.DEVNULL,
                    process_group=group,
                )
            )
        reports.wait(version, len(procs))
        print(f"{len(procs)} bundles following", file=sys.stderr, flush=True)
    return procs


def stop_bundles(procs: list[subprocess.Popen[bytes]]) -> None:
    if not procs:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(procs[0].pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def client_memory(procs: list[subprocess.Popen[bytes]]) -> tuple[float, float]:
    """Median RSS and USS of the bundle processes, in MiB."""
    rss, uss = [], []
    for proc in procs:
        info = psutil.Process(proc.pid).memory_full_info()
        rss.append(info.rss / 2**20)
        uss.append(info.uss / 2**20)
    return statistics.median(rss), statistics.median(uss)


def airflow_bundle_rss() -> float:
    """RSS in MiB of a process that has imported the real bundle class (and so Airflow)."""
    code = (
        "import resource, dagship.airflow.bundle;"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit("importing dagship.airflow.bundle failed:\n" + done.stderr)
    return int(done.stdout.strip()) / 1024


def measure(args: Any, url: str, token: str, server: psutil.Process, work: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "bundles": args.bundles,
        "files": args.files,
        "inline": not args.no_inline,
    }
    read_fd, write_fd = os.pipe()
    reports = Reports(read_fd)
    procs: list[subprocess.Popen[bytes]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        (http.post("/api/v1/deployments", json={"name": DEPLOYMENT})).raise_for_status()
        version = deploy(http, args.files, 0)
        base_held = held(http)
        cpu0, rss0 = idle(server, args.idle)
        try:
            started = time.monotonic()
            procs = start_bundles(args, url, token, work, reports, write_fd, version)
            figures["start_s"] = round(time.monotonic() - started, 1)
            wait_held(http, base_held + args.bundles)
            cpu, rss = idle(server, args.idle)
            figures["client_rss_mib"], figures["client_uss_mib"] = client_memory(procs)
            bundles = [psutil.Process(proc.pid) for proc in procs]
            figures["reach_s"], figures["deploy_cpu_s"], figures["bundles_cpu_s"] = reach(
                args, http, reports, base_held, server, bundles
            )
        finally:
            stop_bundles(procs)
            os.close(write_fd)
    reaches = sorted(figures.pop("reach_s"))
    figures.update(
        idle_cpu0_percent=round(cpu0, 2),
        idle_cpu_percent=round(cpu, 2),
        server_rss0_mib=round(rss0 / 2**20, 1),
        server_rss_mib=round(rss / 2**20, 1),
        server_kib_per_poll=round((rss - rss0) / 1024 / max(args.bundles, 1), 1),
        reach_p50_s=round(statistics.median(reaches), 3),
        reach_p95_s=round(p95(reaches), 3),
        reach_max_s=round(reaches[-1], 3),
        deploys=args.deploys,
        deploy_cpu_s=round(statistics.median(figures["deploy_cpu_s"]), 3),
        bundles_cpu_s=round(statistics.median(figures["bundles_cpu_s"]), 3),
        # The held polls' idle cost is their renewal: each bundle asks again every
        # LISTEN_SECONDS; the server's CPU for one renewal, from (a).
        renewal_cpu_ms=round(
            max(cpu - cpu0, 0.0) / 100 * LISTEN_SECONDS / max(args.bundles, 1) * 1000, 2
        ),
    )
    return figures


def reach(
    args: Any,
    http: httpx.Client,
    reports: Reports,
    base_held: int,
    server: psutil.Process,
    bundles: list[psutil.Process],
) -> tuple[list[float], list[float], list[float]]:
    """Deploy one changed file --deploys times; each bundle's time from the commit's response
    to having the version, the server's CPU seconds meanwhile (answering the woken polls,
    the blob downloads and the polls held again) and the bundle processes' (all together: on
    a small machine they compete with the server). Each deploy starts with every poll held."""
    times: list[float] = []
    cpu: list[float] = []
    clients: list[float] = []
    for revision in range(1, args.deploys + 1):
        wait_held(http, base_held + args.bundles)
        clients_before = cpu_seconds(bundles)
        version = deploy(http, args.files, revision)
        committed, before = time.monotonic(), server.cpu_times()
        have = reports.wait(version, args.bundles)
        wait_held(http, base_held + args.bundles)
        after = server.cpu_times()
        cpu.append(after.user + after.system - before.user - before.system)
        clients.append(cpu_seconds(bundles) - clients_before)
        times += [at - committed for at in have.values()]
        print(f"deploy {revision}: every bundle has it", file=sys.stderr, flush=True)
    return times, cpu, clients


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        used = proc.cpu_times()
        total += used.user + used.system
    return total


def report(f: dict[str, Any]) -> str:
    ratio = f["idle_cpu_percent"] / f["idle_cpu0_percent"] if f["idle_cpu0_percent"] else 0
    airflow = "not measured" if f["airflow_rss_mib"] is None else f"{f['airflow_rss_mib']:.1f} MiB"
    return "\n".join(
        [
            f"{f['bundles']} bundle processes following one deployment of {f['files']} files "
            f"(started in {f['start_s']} s; new files "
            f"{'inline in the answer' if f['inline'] else 'downloaded'})",
            f"server idle CPU: {f['idle_cpu0_percent']:.2f} % of a core with 0 polls, "
            f"{f['idle_cpu_percent']:.2f} % with {f['bundles']} held "
            f"(x{ratio:.1f}; target < {CPU_TARGET_PERCENT} %)",
            f"deploy reaching every bundle ({f['deploys']} deploys x {f['bundles']}): "
            f"p50 {f['reach_p50_s']:.3f} s, p95 {f['reach_p95_s']:.3f} s, "
            f"max {f['reach_max_s']:.3f} s (target: p95 < {REACH_P95_TARGET_S} s)",
            f"server CPU per deploy (answers, downloads, polls held again): "
            f"{f['deploy_cpu_s']:.3f} s (median); per renewal of a held poll: "
            f"{f['renewal_cpu_ms']:.2f} ms",
            f"bundle processes' CPU per deploy, all together: {f['bundles_cpu_s']:.3f} s "
            f"(median; {f['bundles_cpu_s'] / f['bundles'] * 1000:.1f} ms each)",
            f"server RSS: {f['server_rss0_mib']:.1f} MiB with 0 polls, "
            f"{f['server_rss_mib']:.1f} MiB with {f['bundles']}: "
            f"{f['server_kib_per_poll']:.1f} KiB per held poll",
            f"bundle process: RSS {f['client_rss_mib']:.1f} MiB, USS {f['client_uss_mib']:.1f} MiB "
            f"(median); with Airflow imported: RSS {airflow}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--bundles", type=int, default=200, help="bundle processes")
    parser.add_argument("--deploys", type=int, default=10, help="deploys measured")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    parser.add_argument("--files", type=int, default=20, help="files in the DAG bundle")
    parser.add_argument("--ramp", type=int, default=10, help="bundles started at a time")
    parser.add_argument("--database-url", help="e.g. postgresql+psycopg://user@host/db")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--no-airflow", action="store_true", help="skip measuring a process with Airflow imported"
    )
    parser.add_argument(
        "--no-inline",
        action="store_true",
        help="bundles download every new file, as before ?inline= (or from an older server)",
    )
    parser.add_argument("--follow", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.follow:
        url, deployment, root, inline = args.follow
        follow(url, deployment, Path(root), int(inline))
        return 0
    with tempfile.TemporaryDirectory(prefix="dagship-many-bench-") as tmp:
        work = Path(tmp)
        proc, url = start_server(work, args.database_url)
        try:
            token = (work / "home" / "admin-token").read_text().strip()
            figures = measure(args, url, token, psutil.Process(proc.pid), work)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    figures["airflow_rss_mib"] = None if args.no_airflow else round(airflow_bundle_rss(), 1)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
