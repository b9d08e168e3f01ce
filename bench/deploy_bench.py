#!/usr/bin/env python3
"""Deploy benchmarks for dagship, each figure next to a baseline measured in the same run.

(a) Upload size: a project of --files realistic DAG files (5-20 KB each); after a first deploy,
    change one file and deploy again. Compare `uploaded_bytes` with the gzip tarball of dags/
    that a whole-folder upload would send every time (target: <= 1 %).
(b) Wall time: a project of --big-files files; time the `dagship deploy` CLI process (start to
    exit) for an unchanged deploy and for a one-file change (median of --repeats runs), against
    the targets (2 s / 3 s) and against two baselines: CLI start-up (`dagship --help`) and
    tar+gzip of the same project.

The generated DAG source is deterministic (fixed seed) and varied: it compresses about 5x with
gzip, like real Python code (4-8x measured on popular libraries), so the tarball baseline is
neither inflated nor starved.

Run: python bench/deploy_bench.py [--files 1000] [--big-files 10000] [--repeats 5] [--check]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

SEED = 20261126
UNCHANGED_TARGET_S = 2.0
ONE_FILE_TARGET_S = 3.0
UPLOAD_RATIO_TARGET = 0.01

OPERATORS = [
    ("airflow.providers.standard.operators.bash", "BashOperator", 'bash_command="echo {x}"'),
    ("airflow.providers.standard.operators.python", "PythonOperator", "python_callable=_{x}"),
    ("airflow.providers.postgres.hooks.postgres", "PostgresHook", 'postgres_conn_id="{x}"'),
    (
        "airflow.providers.amazon.aws.operators.s3",
        "S3CreateObjectOperator",
        's3_bucket="raw-{x}", s3_key="{x}/data.json", data="{{}}"',
    ),
    (
        "airflow.providers.common.sql.operators.sql",
        "SQLExecuteQueryOperator",
        'conn_id="warehouse", sql="select * from {x}"',
    ),
]
WORDS = [
    "orders",
    "customers",
    "invoices",
    "events",
    "sessions",
    "clicks",
    "payments",
    "refunds",
    "stock",
    "shipments",
    "users",
    "accounts",
    "ledger",
    "metrics",
    "forecast",
    "churn",
    "marketing",
    "campaigns",
    "partners",
    "suppliers",
    "inventory",
    "pricing",
    "catalog",
    "reviews",
    "tickets",
    "alerts",
    "audit",
    "billing",
    "usage",
    "quotas",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ner",
    "pa",
    "qui",
    "ro",
    "sta",
    "tu",
    "ve",
    "wex",
    "yo",
    "zan",
    "bri",
    "cor",
    "del",
    "fen",
    "gra",
    "hul",
    "jin",
    "mor",
    "nex",
    "ost",
    "pri",
]


def _vocabulary(rng: random.Random, size: int = 1500) -> list[str]:
    """Identifiers of a code base: domain words plus many made-up names (tables, columns)."""
    made = {"".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4))) for _ in range(size)}
    return WORDS + sorted(made)


VOCAB = _vocabulary(random.Random(SEED))


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(VOCAB, k=rng.randint(6, 14))).capitalize() + "."


# ------------------------------------------------------------------ project generation


def dag_file(rng: random.Random, index: int, size: int) -> str:
    """Plausible, varied Airflow DAG source of about ``size`` bytes."""
    topic = "_".join(rng.sample(VOCAB, 2))
    dag_id = f"{topic}_{index:05d}"
    mods = rng.sample(OPERATORS, rng.randint(1, 3))
    lines = [
        f'"""Pipeline {dag_id}: loads {topic.replace("_", " and ")} into the warehouse."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import datetime, timedelta",
        "",
        "from airflow.sdk import DAG, task",
    ]
    lines += [f"from {m} import {c}" for m, c, _ in mods]
    lines += [
        "",
        "DEFAULT_ARGS = {",
        f'    "owner": "{rng.choice(VOCAB)}-team",',
        f'    "retries": {rng.randint(0, 5)},',
        f'    "retry_delay": timedelta(minutes={rng.randint(1, 30)}),',
        "}",
        "",
    ]
    lines += [
        "with DAG(",
        f'    dag_id="{dag_id}",',
        f'    schedule="{rng.randint(0, 59)} {rng.randint(0, 23)} * * *",',
        f"    start_date=datetime(2026, {rng.randint(1, 12)}, {rng.randint(1, 28)}),",
        "    catchup=False,",
        "    default_args=DEFAULT_ARGS,",
        f'    tags=["{rng.choice(VOCAB)}", "{rng.choice(VOCAB)}"],',
        ") as dag:",
    ]
    body: list[str] = []
    step = 0
    while len("\n".join(lines + body)) < size - 200:
        step += 1
        word = rng.choice(VOCAB)
        kind = rng.random()
        if kind < 0.15:
            body += [f"    # {_sentence(rng)}", f"    # {_sentence(rng)}"]
        elif kind < 0.45:
            cols = ", ".join(rng.sample(VOCAB, rng.randint(3, 8)))
            body += [
                "",
                "    @task",
                f"    def transform_{word}_{step}(rows: list[dict]) -> int:",
                f'        """Clean {word} rows and count those with {cols}."""',
                f"        keep = [r for r in rows if r.get('{word}') is not None]",
                f"        total = sum(int(r.get('{rng.choice(VOCAB)}', 0)) for r in keep)",
                f"        return total * {rng.randint(1, 97)} // max(len(keep), 1)",
            ]
        elif kind < 0.7:
            _, cls, args = rng.choice(mods)
            body += [
                f'    {word}_{step} = {cls}(task_id="{word}_{step}", '
                + args.format(x=f"{word}_{step}")
                + ")"
            ]
        else:
            cols = ",\n            ".join(f"{w} as {w}_{step}" for w in rng.sample(VOCAB, 5))
            body += [
                f"    # {rng.choice(VOCAB)} comes from the {rng.choice(VOCAB)} feed",
                f'    SQL_{step} = """',
                f"        select {cols}",
                f"        from raw.{word} where ds = '{{{{ ds }}}}'",
                f"        and {rng.choice(VOCAB)}_id > {rng.randint(0, 10**6)}",
                '    """',
            ]
    return "\n".join(lines + body) + "\n"


def make_project(root: Path, files: int, seed: int = SEED) -> Path:
    rng = random.Random(seed)
    for i in range(files):
        folder = root / "dags" / rng.choice(WORDS)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"dag_{i:05d}.py").write_text(dag_file(rng, i, rng.randint(5_000, 20_000)))
    (root / "include").mkdir(parents=True, exist_ok=True)
    (root / "include" / "common.py").write_text("def helper() -> int:\n    return 1\n")
    (root / "requirements.txt").write_text("apache-airflow-providers-amazon\n")
    (root / "Dockerfile").write_text("FROM apache/airflow:3.1.0\n")
    return root


def change_one_file(root: Path, tag: str) -> Path:
    """Append a line to the DAG file of median size (a typical edit of a typical file)."""
    files = sorted((root / "dags").rglob("*.py"), key=lambda p: (p.stat().st_size, p.name))
    target = files[len(files) // 2]
    with target.open("a") as handle:
        handle.write(f"# changed: {tag}\n")
    return target


def gzip_tar_size(folder: Path) -> int:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buf.tell()


# ------------------------------------------------------------------ server and CLI


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dagship_command() -> list[str]:
    script = Path(sys.executable).parent / "dagship"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagship"]


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.home = work / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSHIP_")}
        self.env.update({"DAGSHIP_HOME": str(self.home), "NO_COLOR": "1", "TERM": "dumb"})
        self.env.pop("CI", None)
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.home.mkdir(parents=True)
        log = (self.work / "server.log").open("wb")
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagship",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    break
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "server did not start:\n" + (self.work / "server.log").read_text()
                    ) from None
                time.sleep(0.1)
        self.env["DAGSHIP_URL"] = self.url
        self.env["DAGSHIP_API_TOKEN"] = (self.home / "admin-token").read_text().strip()

    def stop(self) -> None:
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()

    def cli(self, *args: str, trace: Path | None = None) -> tuple[float, str]:
        """Run the CLI; with ``trace``, through bench/cli_trace.py, which writes its steps
        there (a few milliseconds more at the start: the script is not a console script)."""
        command = [sys.executable, str(Path(__file__).with_name("cli_trace.py")), str(trace)]
        start = time.perf_counter()
        done = subprocess.run(
            [*(command if trace else dagship_command()), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"dagship {' '.join(args)} failed:\n{done.stderr}")
        return wall, done.stdout

    def deploy(self, root: Path, name: str) -> tuple[float, dict[str, object]]:
        wall, out = self.cli("deploy", str(root), "--deployment", name, "--no-parse", "--json")
        return wall, json.loads(out)


def median_time(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ------------------------------------------------------------------ the benchmarks


def upload_size(bench: Bench, files: int) -> dict[str, object]:
    root = make_project(bench.work / "upload-project", files)
    bench.cli("deployment", "create", "bench-upload")
    _, first = bench.deploy(root, "bench-upload")
    changed = change_one_file(root, "upload bench")
    _, second = bench.deploy(root, "bench-upload")
    tarball = gzip_tar_size(root / "dags")
    uploaded = int(second["uploaded_bytes"])  # type: ignore[call-overload]
    return {
        "files": files,
        "dags_bytes": sum(p.stat().st_size for p in (root / "dags").rglob("*") if p.is_file()),
        "first_uploaded_bytes": first["uploaded_bytes"],
        "changed_file_bytes": changed.stat().st_size,
        "uploaded_files": second["uploaded_files"],
        "uploaded_bytes": uploaded,
        "gzip_tarball_bytes": tarball,
        "ratio": uploaded / tarball,
    }


def wall_time(bench: Bench, files: int, repeats: int) -> dict[str, object]:
    root = make_project(bench.work / "big-project", files, seed=SEED + 1)
    bench.cli("deployment", "create", "bench-big")
    first_wall, _ = bench.deploy(root, "bench-big")

    def unchanged() -> float:
        wall, out = bench.deploy(root, "bench-big")
        assert out["unchanged"] is True, out
        return wall

    def one_file() -> float:
        change_one_file(root, f"{time.time_ns()}")
        wall, out = bench.deploy(root, "bench-big")
        assert out["uploaded_files"] == 1 and out["unchanged"] is False, out
        return wall

    unchanged_s = median_time(repeats, unchanged)
    one_file_s = median_time(repeats, one_file)
    startup_s = median_time(repeats, lambda: bench.cli("--help")[0])
    targz_s = median_time(max(1, min(repeats, 3)), lambda: timed(lambda: gzip_tar_size(root)))
    return {
        "files": files,
        "first_deploy_s": first_wall,
        "unchanged_s": unchanged_s,
        "one_file_s": one_file_s,
        "cli_startup_s": startup_s,
        "tar_gzip_s": targz_s,
        "unchanged_vs_startup": unchanged_s / startup_s,
        "one_file_vs_startup": one_file_s / startup_s,
        "unchanged_vs_tar_gzip": unchanged_s / targz_s,
        "one_file_vs_tar_gzip": one_file_s / targz_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="DAG files for (a)")
    parser.add_argument("--big-files", type=int, default=10000, help="files for (b)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dagship-bench-"))
    bench = Bench(work)
    try:
        bench.start()
        a = upload_size(bench, args.files)
        b = wall_time(bench, args.big_files, args.repeats)
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    met = {
        "upload_ratio": a["ratio"] <= UPLOAD_RATIO_TARGET,  # type: ignore[operator]
        "unchanged": b["unchanged_s"] <= UNCHANGED_TARGET_S,  # type: ignore[operator]
        "one_file": b["one_file_s"] <= ONE_FILE_TARGET_S,  # type: ignore[operator]
    }
    if args.json:
        print(json.dumps({"upload": a, "wall": b, "targets_met": met}, indent=2))
    else:

        def mark(ok: bool) -> str:
            return "ok" if ok else "MISSED"

        print(f"(a) {a['files']} DAG files, {a['dags_bytes']:,} bytes in dags/")
        print(f"    first deploy uploaded        {a['first_uploaded_bytes']:>12,} bytes")
        print(
            f"    one-file change uploaded     {a['uploaded_bytes']:>12,} bytes "
            f"in {a['uploaded_files']} file(s) (changed file: {a['changed_file_bytes']:,})"
        )
        print(f"    gzip tarball of dags/        {a['gzip_tarball_bytes']:>12,} bytes")
        print(
            f"    ratio                        {a['ratio']:>12.4%}   target <= "
            f"{UPLOAD_RATIO_TARGET:.0%}  {mark(met['upload_ratio'])}"
        )
        print(f"(b) {b['files']} files, CLI wall time, median of {args.repeats}")
        print(f"    first deploy                 {b['first_deploy_s']:>8.2f} s")
        print(
            f"    unchanged deploy             {b['unchanged_s']:>8.2f} s   target <= "
            f"{UNCHANGED_TARGET_S:.0f} s  {mark(met['unchanged'])}"
        )
        print(
            f"    one-file change deploy       {b['one_file_s']:>8.2f} s   target <= "
            f"{ONE_FILE_TARGET_S:.0f} s  {mark(met['one_file'])}"
        )
        print(
            f"    baseline `dagship --help`    {b['cli_startup_s']:>8.2f} s   unchanged = "
            f"{b['unchanged_vs_startup']:.1f}x, one-file = {b['one_file_vs_startup']:.1f}x"
        )
        print(
            f"    baseline tar+gzip project    {b['tar_gzip_s']:>8.2f} s   unchanged = "
            f"{b['unchanged_vs_tar_gzip']:.2f}x, one-file = {b['one_file_vs_tar_gzip']:.2f}x"
        )
    return 1 if args.check and not all(met.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
