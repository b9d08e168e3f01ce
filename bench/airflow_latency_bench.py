#!/usr/bin/env python3
"""Deploy latency into a real Airflow: from "ship it" until Airflow has parsed the new code.

A project of --dags small DAG files (deterministic) goes to three real Airflows (`airflow
standalone`, SQLite, 3.3), one after the other, and each scenario is timed per run:

dagship     `dagship deploy --dags --wait` (CLI start to exit 0) with Airflow on the dagship DAG
            bundle (runtime.airflow_env's fast settings). Then checked through Airflow's REST
            API: the DAG of that file is at the deploy's `dags_version` and has the new content.
            (a) one DAG file edited, (b) one DAG file added. Target p50 <= 1.5 s, p95 <= 3 s.
git         Airflow's own GitDagBundle tracking a local bare repository (refresh_interval
            --git-refresh, default 1 s), same other settings: from `git push` until the DAG of
            that file is at the pushed commit with the new content. An edit and a new file.
stock       a plain dags folder with Airflow's default parse settings: from the edited or new
            file landing in the folder until its DAG shows the new content (a new file waits for
            the folder's 5-minute listing: --stock-runs, --skip-stock).

dagship and git run with [dag_processor] min_file_process_interval --min-file-process-interval:
600 (the default here) keeps the parse queue idle between deploys at 1,000 files; 30 (Airflow's
default) keeps it busy re-parsing unchanged files, the case where a changed file can wait for a
whole parsing cycle. Only one Airflow runs at a time; every process started is stopped.
--results FILE.json writes the times (bench/results/, read by bench/latency_plot.py).

Run: python bench/airflow_latency_bench.py [--dags 1000] [--runs 10] [--git-runs 10]
     [--min-file-process-interval 30] [--results bench/results/1000-busy.json]
Try it small: python bench/airflow_latency_bench.py --dags 50 --runs 3 --git-runs 2 --skip-stock
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

import dagship.local.airflow as runtime
from dagship.core.naming import bundle_name
from deploy_bench import SEED, VOCAB, WORDS, Bench, free_port

P50_TARGET_S = 1.5
P95_TARGET_S = 3.0
# Busy when Airflow re-parses unchanged files this often (seconds) or more.
BUSY_INTERVAL = 30
POLL_S = 0.1
GIT_BUNDLE = "git-bench"
GIT_CLASSPATH = "airflow.providers.git.bundles.git.GitDagBundle"
DEPLOYMENT = "latency"

# ------------------------------------------------------------------ the project


def dag_source(rng: random.Random, dag_id: str, rev: int) -> str:
    """A small, plausible DAG (1-3 KB) that imports only Airflow's standard provider; its
    description carries ``rev`` so that a parse of new content is visible in the REST API."""
    words = rng.sample(VOCAB, 6)
    lines = [
        f'"""Loads {words[0]} and {words[1]} into the warehouse."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import datetime, timedelta",
        "",
        "from airflow.providers.standard.operators.bash import BashOperator",
        "from airflow.sdk import DAG, task",
        "",
        "with DAG(",
        f'    dag_id="{dag_id}",',
        f'    description="{words[0]} pipeline, rev {rev}",',
        f'    schedule="{rng.randint(0, 59)} {rng.randint(0, 23)} * * *",',
        f"    start_date=datetime(2026, {rng.randint(1, 12)}, {rng.randint(1, 28)}),",
        "    catchup=False,",
        f'    default_args={{"owner": "{words[2]}-team", "retries": {rng.randint(0, 3)},',
        f'                  "retry_delay": timedelta(minutes={rng.randint(1, 30)})}},',
        f'    tags=["{words[3]}", "{words[4]}"],',
        ") as dag:",
        f'    extract = BashOperator(task_id="extract", bash_command="echo {words[5]}")',
        "",
    ]
    previous = "extract"
    for step in range(rng.randint(1, 4)):
        word = rng.choice(VOCAB)
        lines += [
            "    @task",
            f"    def {word}_{step}() -> int:",
            f'        """Count the {word} rows of the day."""',
            f"        return sum(range({rng.randint(1, 999)})) % {rng.randint(2, 97)}",
            "",
            f"    {word}_{step}_task = {word}_{step}()",
            f"    {previous} >> {word}_{step}_task",
            "",
        ]
        previous = f"{word}_{step}_task"
    return "\n".join(lines)


@dataclass
class Project:
    root: Path
    count: int
    revs: dict[int, int] = field(default_factory=dict)
    added: int = 0

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    def relpath(self, index: int) -> str:
        return f"{WORDS[index % len(WORDS)]}/dag_{index:05d}.py"

    @staticmethod
    def dag_id(index: int) -> str:
        return f"bench_{index:05d}"

    def write(self, index: int, rev: int, folder: Path | None = None) -> Path:
        path = (folder or self.dags) / self.relpath(index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dag_source(random.Random(SEED + index), self.dag_id(index), rev))
        self.revs[index] = rev
        return path

    def generate(self) -> Project:
        for index in range(self.count):
            self.write(index, 0)
        return self

    def edit_target(self, run: int) -> int:
        # Spread over the project, so edited files sit at different places in the parse queue.
        return (run * 379 + 17) % self.count

    def new_index(self) -> int:
        self.added += 1
        return 100_000 + self.added


def make_project(root: Path, count: int) -> Project:
    project = Project(root, count).generate()
    (root / "include").mkdir(exist_ok=True)
    (root / "requirements.txt").write_text("apache-airflow-providers-standard\n")
    return project


# ------------------------------------------------------------------ Airflow


def airflow_settings(env: dict[str, str], args: argparse.Namespace) -> dict[str, str]:
    env.update(
        {
            # Benchmark only: the REST API needs no token (nor does the dagship server).
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(args.min_interval),
            "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": str(args.safe_mode),
        }
    )
    return env


class Rest:
    """The few REST calls the benchmark polls, unauthenticated (all-admins mode)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def dag(self, dag_id: str) -> dict[str, object] | None:
        response = self.http.get(f"/api/v2/dags/{dag_id}")
        return response.json() if response.status_code == 200 else None

    def count(self, bundle: str | None) -> int:
        params: dict[str, object] = {"limit": 1}
        if bundle:
            params["bundle_name"] = bundle
        try:
            response = self.http.get("/api/v2/dags", params=params)
        except httpx.HTTPError:  # a loaded machine: the API server answers late
            return 0
        return int(response.json()["total_entries"]) if response.status_code == 200 else 0

    def import_errors(self) -> list[dict[str, object]]:
        response = self.http.get("/api/v2/importErrors", params={"limit": 100})
        return list(response.json()["import_errors"]) if response.status_code == 200 else []

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        start = time.perf_counter()
        while not check():
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(POLL_S)
        return time.perf_counter() - start

    def within(self, check: Callable[[], bool], timeout: float) -> float | None:
        """Seconds until ``check()`` held, or None if it did not within ``timeout``."""
        try:
            return self.wait_for(check, timeout, "")
        except SystemExit:
            return None

    def parsed(self, dag_id: str, rev: int, version: str | None = None) -> bool:
        try:
            dag = self.dag(dag_id)
        except httpx.HTTPError:
            return False
        if dag is None or not str(dag.get("description") or "").endswith(f"rev {rev}"):
            return False
        return version is None or dag.get("bundle_version") == version

    def wait_all(self, bundle: str | None, count: int, timeout: float) -> float:
        took = self.wait_for(lambda: self.count(bundle) >= count, timeout, f"{count} DAGs")
        errors = self.import_errors()
        if errors:
            raise SystemExit(f"import errors in the generated project: {errors[:2]}")
        return took


class Airflow:
    """One `airflow standalone`, stopped (its whole process group) on exit."""

    def __init__(self, work: Path, name: str, env: dict[str, str], port: int) -> None:
        self.log = work / f"airflow-{name}.log"
        self.env, self.port = env, port
        self.process: runtime.AirflowProcess | None = None
        self.rest = Rest(runtime.airflow_url(port))

    def __enter__(self) -> Airflow:
        self.process = runtime.start_airflow(self.env, self.log)
        self.process.wait_ready(timeout=300)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop()


# ------------------------------------------------------------------ scenarios


@dataclass
class Figures:
    system: str  # dagship, GitDagBundle, stock dags folder
    change: str  # edit, add
    times: list[float]
    note: str = ""
    # Runs given up after --baseline-timeout seconds: counted in ``times`` as that timeout,
    # so percentiles that reach them are lower bounds.
    censored: int = 0

    @property
    def scenario(self) -> str:
        return f"{self.system}: {self.change} a DAG file"

    def pct(self, q: float) -> float:
        ordered = sorted(self.times)
        # Nearest rank: the smallest value with at least q of the runs at or below it.
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    @property
    def p50(self) -> float:
        return statistics.median(self.times)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dagship_scenarios(work: Path, project: Project, args: argparse.Namespace) -> list[Figures]:
    bench = Bench(work / "dagship")
    bench.work.mkdir()
    bench.start()
    try:
        port = free_port()
        url = runtime.airflow_url(port)
        bench.cli("deployment", "create", DEPLOYMENT, "--airflow-url", url)
        created = json.loads(bench.cli("token", "create", "--role", "viewer", "--json")[1])
        token = str(created.get("token") or created.get("secret"))
        home = bench.work / "airflow-home"
        env = runtime.airflow_env(home, port, bench.url, DEPLOYMENT, token)
        with Airflow(bench.work, "dagship", airflow_settings(env, args), port) as af:
            wall, _ = bench.cli(
                "deploy",
                str(project.root),
                "-d",
                DEPLOYMENT,
                "--dags",
                "--no-parse",
                # With --no-settle the runs start as soon as Airflow lists a first DAG.
                *([] if args.no_settle else ["--wait", "--timeout", str(int(setup_timeout(args)))]),
            )
            # --wait follows the files a deploy changed; the first one may return before
            # Airflow has listed every DAG, so wait for all of them before timing anything.
            took = settle(af, bundle_name(DEPLOYMENT), project.count, args)
            log(f"dagship: first deploy {wall:.1f}s, all {project.count} DAGs {took:.1f}s later")

            def deploy(dag_id: str, rev: int) -> float:
                command = ["deploy", str(project.root), "-d", DEPLOYMENT, "--dags", "--no-parse"]
                began = time.time()
                wall, out = bench.cli(*command, "--wait", "--json", trace=args.trace)
                result = json.loads(out)
                # Airflow must already show the new content at the deploy's version.
                if not af.rest.parsed(dag_id, rev, result["dags_version"]):
                    raise SystemExit(f"deploy --wait exited before {dag_id} rev {rev} was parsed")
                log(f"  {dag_id} rev {rev}: {wall:.2f}s (wait {result['wait']['elapsed_seconds']})")
                if args.trace:
                    trace_run(args.trace, af, dag_id, result["dags_version"], began, wall)
                time.sleep(args.pause)
                return wall

            edits, adds = [], []
            for run in range(args.runs):
                index = project.edit_target(run)
                project.write(index, project.revs[index] + 1)
                edits.append(deploy(project.dag_id(index), project.revs[index]))
            for _ in range(args.runs):
                index = project.new_index()
                project.write(index, 1)
                adds.append(deploy(project.dag_id(index), 1))
    finally:
        bench.stop()
    return [Figures("dagship", "edit", edits), Figures("dagship", "add", adds)]


# What the DAG bundle and Airflow's DAG processor log about a version, in the order they happen.
BUNDLE_STEPS = (
    ("ready", "is ready to switch to"),
    ("switched", "switched to version"),
    ("listed", "Found "),
)


def trace_run(
    trace: Path, af: Airflow, dag_id: str, version: str, began: float, wall: float
) -> None:
    """Split one traced run into its steps, from the CLI's own trace (bench/cli_trace.py),
    Airflow's log (the bundle's tree ready and switched, the files listed again) and the DAG's
    ``last_parsed_time``; log them and append them to ``trace`` as a ``run`` line."""
    ended = began + wall
    events = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    mine = [e for e in events if e["event"] != "run" and began <= e["t"] <= ended]
    requests = [e for e in mine if e["event"] == "request"]
    commit = next(e for e in requests if e["method"] == "POST" and e["path"].endswith("/deploys"))
    polls = [e for e in requests if e["path"].endswith("/airflow")]
    marks: dict[str, float] = {
        "python": next(e["t"] for e in mine if e["event"] == "python"),
        "first request": requests[0]["start"],
        "committed": commit["t"],
    }
    marks.update(airflow_marks(af.log, version, commit["t"]))
    dag = af.rest.dag(dag_id) or {}
    parsed = _epoch(dag.get("last_parsed_time"))
    if parsed is not None:
        marks["parsed"] = parsed
    marks["last poll"] = polls[-1]["t"]
    marks["done"] = next(e["t"] for e in mine if e["event"] == "done")
    marks["exit"] = ended
    steps = {name: round(at - began, 3) for name, at in marks.items()}
    polls_info = {"polls": len(polls), "requests": len(requests)}
    with trace.open("a") as file:
        file.write(json.dumps({"event": "run", "dag_id": dag_id, "steps": steps, **polls_info}))
        file.write("\n")
    log("    " + ", ".join(f"{name} {at:.2f}" for name, at in steps.items()) + f", {polls_info}")


def airflow_marks(path: Path, version: str, since: float) -> dict[str, float]:
    """When the bundle had ``version``'s tree ready and switched to it, and when Airflow next
    listed the bundle's files, from Airflow's log (wall clock)."""
    found: dict[str, float] = {}
    for line in path.read_text(errors="replace").splitlines():
        if "dag-processor" not in line:
            continue
        for name, text in BUNDLE_STEPS:
            if name in found or text not in line:
                continue
            if name != "listed" and version not in line:
                continue
            if name == "listed" and "switched" not in found:
                continue
            at = _epoch(line.split("|", 1)[1].split()[0]) if "|" in line else None
            if at is not None and at >= since - 1:
                found[name] = at
    return found


def _epoch(stamp: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 time (Airflow's log and REST API)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def git_scenarios(work: Path, project: Project, args: argparse.Namespace) -> list[Figures]:
    root = work / "git"
    bare, checkout = root / "bare.git", root / "checkout"
    root.mkdir()
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    git(root, "clone", "-q", str(bare), str(checkout))
    shutil.copytree(project.dags, checkout / "dags")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", "project")
    git(checkout, "push", "-q", "origin", "HEAD:main")

    port = free_port()
    env = runtime.airflow_env(root / "airflow-home", port, "unused", "unused", "unused")
    env.pop(runtime.TOKEN_ENV)
    bundle = {"tracking_ref": "main", "repo_url": str(bare), "subdir": "dags"}
    bundle["refresh_interval"] = args.git_refresh  # type: ignore[assignment]
    env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
        [{"name": GIT_BUNDLE, "classpath": GIT_CLASSPATH, "kwargs": bundle}]
    )
    copy = Project(checkout, project.count, dict(project.revs))
    with Airflow(root, "git", airflow_settings(env, args), port) as af:
        took = settle(af, GIT_BUNDLE, project.count, args)
        log(f"git: {project.count} DAGs parsed {took:.1f}s after Airflow was ready")

        def push(dag_id: str, rev: int, figure: Figures) -> None:
            git(checkout, "add", "-A")
            git(checkout, "commit", "-q", "-m", f"{dag_id} rev {rev}")
            sha = git(checkout, "rev-parse", "HEAD")
            start = time.perf_counter()
            git(checkout, "push", "-q", "origin", "HEAD:main")
            done = af.rest.within(lambda: af.rest.parsed(dag_id, rev, sha), args.baseline_timeout)
            record(figure, f"{dag_id} rev {rev}", time.perf_counter() - start, done is None, args)
            time.sleep(args.pause)

        edits = Figures("GitDagBundle", "edit", [], f"refresh_interval {args.git_refresh}s")
        adds = Figures("GitDagBundle", "add", [], edits.note)
        for run in range(args.git_runs):
            index = project.edit_target(run + 1000)
            copy.write(index, copy.revs[index] + 1)
            push(copy.dag_id(index), copy.revs[index], edits)
        for _ in range(args.git_runs):
            index = copy.new_index()
            copy.write(index, 1)
            push(copy.dag_id(index), 1, adds)
    return [edits, adds]


def record(
    figure: Figures, what: str, took: float, gave_up: bool, args: argparse.Namespace
) -> None:
    """One baseline run's time; a run given up counts as --baseline-timeout (a lower bound)."""
    figure.times.append(args.baseline_timeout if gave_up else took)
    figure.censored += gave_up
    log(f"  {what}: {took:.2f}s{' GAVE UP' if gave_up else ''}")


def stock_scenario(work: Path, project: Project, args: argparse.Namespace) -> list[Figures]:
    root = work / "stock"
    home = root / "airflow-home"
    shutil.copytree(project.dags, home / "dags")
    port = free_port()
    env = runtime.airflow_env(home, port, "unused", "unused", "unused", fast=False)
    # Airflow's default bundle (the dags folder) and its default parse settings.
    for key in (runtime.TOKEN_ENV, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"):
        env.pop(key)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    copy = Project(home, project.count, dict(project.revs))
    note = "Airflow defaults"
    edits = Figures("stock dags folder", "edit", [], note)
    adds = Figures("stock dags folder", "add", [], note)
    with Airflow(root, "stock", env, port) as af:
        took = af.rest.wait_all(None, project.count, setup_timeout(args))
        log(f"stock: {project.count} DAGs parsed {took:.1f}s after Airflow was ready")

        def land(index: int, rev: int, figure: Figures) -> None:
            # Written aside and renamed in, as a deploy tool that copies files would.
            staged = copy.write(index, rev, folder=root / "staging")
            start = time.perf_counter()
            os.replace(staged, home / "dags" / copy.relpath(index))
            dag_id = copy.dag_id(index)
            done = af.rest.within(lambda: af.rest.parsed(dag_id, rev), args.baseline_timeout)
            record(figure, f"{dag_id} rev {rev}", time.perf_counter() - start, done is None, args)

        for run in range(args.stock_runs):
            index = project.edit_target(run + 2000)
            land(index, copy.revs[index] + 1, edits)
        for _ in range(args.stock_runs):
            land(copy.new_index(), 1, adds)
    return [edits, adds]


def settle(af: Airflow, bundle: str, count: int, args: argparse.Namespace) -> float:
    """Wait until Airflow lists every DAG of the project; with --no-settle, only for a first
    few, so the runs are timed while Airflow's first parse of the project is still going on."""
    if args.no_settle:
        return af.rest.wait_for(lambda: af.rest.count(bundle) >= 1, setup_timeout(args), "a DAG")
    return af.rest.wait_all(bundle, count, setup_timeout(args))


def setup_timeout(args: argparse.Namespace) -> float:
    """How long the first parse of the whole project may take: about 0.5 s a file on 2 cores."""
    return max(1800.0, args.dags * 0.6)


# ------------------------------------------------------------------ report


def report(figures: list[Figures], args: argparse.Namespace, total: float) -> bool:
    print(
        f"\nDeploy latency into Airflow, {args.dags} DAG files, min_file_process_interval "
        f"{args.min_interval}s (stock: Airflow defaults)"
    )
    header = f"{'scenario':<36} {'runs':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7}"
    print(header + "   dagship p50 / p95 vs this")
    print("-" * (len(header) + 30))
    ours = {f.scenario: f for f in figures if f.scenario.startswith("dagship")}
    for fig in figures:
        if not fig.times:
            print(f"{fig.scenario:<36} {0:>4}   (no runs)")
            continue
        line = (
            f"{fig.scenario:<36} {len(fig.times):>4} {fig.p50:>7.2f} {fig.pct(0.95):>7.2f} "
            f"{max(fig.times):>7.2f}"
        )
        if fig.censored:
            line += (
                f"   ({fig.censored} given up after {args.baseline_timeout:g}s, counted as that)"
            )
        if not fig.scenario.startswith("dagship"):
            kind = fig.change
            mine = ours.get(f"dagship: {kind} a DAG file")
            if mine and mine.times and fig.times:
                line += (
                    f"   {mine.p50 / fig.p50:.2f}x / {mine.pct(0.95) / fig.pct(0.95):.2f}x"
                    f"  ({kind}; {fig.note})"
                )
        print(line)
    met = True
    for fig in ours.values():
        ok = fig.p50 <= P50_TARGET_S and fig.pct(0.95) <= P95_TARGET_S
        met &= ok
        print(
            f"{fig.scenario}: p50 {fig.p50:.2f}s (target <= {P50_TARGET_S:g}s), p95 "
            f"{fig.pct(0.95):.2f}s (target <= {P95_TARGET_S:g}s)  {'ok' if ok else 'MISSED'}"
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"total run time {total / 60:.1f} min; load average at the end {load}")
    return met


def write_results(
    path: Path, figures: list[Figures], args: argparse.Namespace, load: list[float], total: float
) -> None:
    """The run's times and conditions, as bench/latency_plot.py reads them."""
    document = {
        "benchmark": "airflow_latency_bench",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "load_average": {"start": load, "end": [round(x, 2) for x in os.getloadavg()]},
        "dags": args.dags,
        "min_file_process_interval": args.min_interval,
        "parse_queue": "busy" if args.no_settle or args.min_interval <= BUSY_INTERVAL else "idle",
        "settled": not args.no_settle,
        "git_refresh_interval": args.git_refresh,
        "dag_discovery_safe_mode": args.safe_mode,
        "minutes": round(total / 60, 1),
        "figures": [
            {
                "system": fig.system,
                "change": fig.change,
                "note": fig.note,
                "runs": len(fig.times),
                "given_up": fig.censored,
                "p50": round(fig.p50, 3) if fig.times else None,
                "p95": round(fig.pct(0.95), 3) if fig.times else None,
                "times": [round(t, 3) for t in fig.times],
            }
            for fig in figures
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    log(f"results written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=1000, help="DAG files in the project")
    parser.add_argument("--runs", type=int, default=10, help="dagship runs per scenario")
    parser.add_argument("--git-runs", type=int, default=10, help="GitDagBundle runs per scenario")
    parser.add_argument(
        "--stock-runs", type=int, default=2, help="stock dags folder runs per scenario"
    )
    parser.add_argument("--skip-dagship", action="store_true", help="measure the baselines only")
    parser.add_argument("--skip-git", action="store_true", help="skip the GitDagBundle baseline")
    parser.add_argument("--skip-stock", action="store_true", help="skip the stock baseline")
    parser.add_argument(
        "--git-refresh",
        type=int,
        default=1,
        help="GitDagBundle refresh_interval (dagship's bundle refreshes on every loop, 0, "
        "which for git would mean a fetch per loop)",
    )
    parser.add_argument(
        "--min-file-process-interval",
        dest="min_interval",
        type=int,
        default=600,
        help="[dag_processor] min_file_process_interval for dagship and git (seconds)",
    )
    parser.add_argument(
        "--no-discovery-safe-mode",
        dest="safe_mode",
        action="store_false",
        help="[core] dag_discovery_safe_mode False for dagship and git: Airflow lists the "
        "bundle's files by name after a version change instead of reading each one",
    )
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument(
        "--baseline-timeout",
        type=float,
        default=600.0,
        help="give a GitDagBundle or stock run up after this many seconds (counted as that)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--results", type=Path, help="write the times to this JSON file")
    parser.add_argument(
        "--trace",
        type=Path,
        help="run dagship's deploys through bench/cli_trace.py and append each run's steps "
        "(seconds from the command's start) to this JSON lines file",
    )
    parser.add_argument(
        "--no-settle",
        action="store_true",
        help="time the runs while Airflow's first parse of the project is still going on (the "
        "parse queue busiest) instead of waiting for it (10,000 files: tens of minutes)",
    )
    args = parser.parse_args(argv)
    if not runtime.airflow_installed():
        raise SystemExit(f"Apache Airflow is not installed: {runtime.INSTALL_HINT}")

    started = time.perf_counter()
    load = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="dagship-latency-"))
    figures: list[Figures] = []
    try:
        project = make_project(work / "project", args.dags)
        if not args.skip_dagship:
            figures += dagship_scenarios(work, project, args)
            if args.results:  # so far: a later baseline may take long
                write_results(args.results, figures, args, load, time.perf_counter() - started)
        baselines = [] if args.skip_git else [git_scenarios]
        baselines += [] if args.skip_stock else [stock_scenario]
        for baseline in baselines:
            # A failed baseline is reported, and does not cost the figures measured so far.
            try:
                figures += baseline(work, make_project(work / baseline.__name__, args.dags), args)
                if args.results:
                    write_results(args.results, figures, args, load, time.perf_counter() - started)
            except (Exception, SystemExit) as error:
                log(f"{baseline.__name__} failed: {error!r}")
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    met = report(figures, args, total)
    if args.results:
        write_results(args.results, figures, args, load, total)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
