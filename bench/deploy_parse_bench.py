#!/usr/bin/env python3
"""What the parse check adds to a one-file DAG deploy, against the same deploy with --no-parse
measured in the same run.

A project of --files small DAG files (Airflow 3.3.2, no requirements) is deployed once with the
check: that builds (or finds) the environment, starts the parse worker and fills the parse cache
(not timed). Then, --repeats times each, one DAG file is changed and deployed: alternately with
the check (the default) and with --no-parse. Each figure is the median wall time of the
`dagship deploy` process, start to exit; the target is at most 0.3 s added.

The environment is the one `dagship parse` uses: in $DAGSHIP_CACHE_DIR (default
~/.cache/dagship), so it is built once (about a minute) and warm on the next runs; --local
parses with the Airflow installed next to dagship instead.

Run: python bench/deploy_parse_bench.py [--files 50] [--repeats 5] [--local] [--json] [--check]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from deploy_bench import Bench

ADDED_TARGET_S = 0.3
AIRFLOW_VERSION = "3.3.2"


def dag_source(index: int, tag: str = "") -> str:
    return (
        "from datetime import datetime\n\n"
        "from airflow.sdk import dag, task\n\n\n"
        f'@dag(dag_id="bench_{index:04d}", schedule=None, start_date=datetime(2026, 1, 1))\n'
        f"def bench_{index:04d}():\n"
        "    @task\n"
        "    def hello() -> int:\n"
        f"        return {index}\n\n"
        "    hello()\n\n\n"
        f"bench_{index:04d}()\n"
        f"# {tag}\n"
    )


def make_project(root: Path, files: int) -> Path:
    (root / "dags").mkdir(parents=True)
    for index in range(files):
        (root / "dags" / f"bench_{index:04d}.py").write_text(dag_source(index))
    (root / "dagship.yaml").write_text(f"airflow_version: {AIRFLOW_VERSION}\n")
    return root


def deploy(bench: Bench, root: Path, *flags: str) -> tuple[float, dict[str, object]]:
    wall, out = bench.cli("deploy", str(root), "--deployment", "bench-parse", "--json", *flags)
    return wall, json.loads(out)


def one_file_deploy(bench: Bench, root: Path, files: int, flags: list[str]) -> float:
    """Change one DAG file and deploy it; the deploy's wall time."""
    (root / "dags" / f"bench_{files // 2:04d}.py").write_text(
        dag_source(files // 2, f"{time.time_ns()}")
    )
    wall, out = deploy(bench, root, *flags)
    expected = "skipped" if "--no-parse" in flags else "passed"
    assert out["kind"] == "dags" and out["uploaded_files"] == 1, out
    assert out["checks"] == {"parse": expected, "pytest": "not-run"}, out  # type: ignore[comparison-overlap]
    return wall


def measure(bench: Bench, files: int, repeats: int, local: bool) -> dict[str, object]:
    root = make_project(bench.work / "project", files)
    bench.cli("deployment", "create", "bench-parse")
    extra = ["--local"] if local else []
    first_s, _ = deploy(bench, root, *extra)  # environment, parse worker and cache: warm
    parsed, unparsed = [], []
    for _ in range(repeats):
        parsed.append(one_file_deploy(bench, root, files, extra))
        unparsed.append(one_file_deploy(bench, root, files, ["--no-parse"]))
    parse_s, no_parse_s = statistics.median(parsed), statistics.median(unparsed)
    return {
        "files": files,
        "local": local,
        "first_deploy_s": first_s,
        "one_file_parse_s": parse_s,
        "one_file_no_parse_s": no_parse_s,
        "added_s": parse_s - no_parse_s,
        "ratio": parse_s / no_parse_s,
        "target_added_s": ADDED_TARGET_S,
    }


def stop_parse_workers(root: Path) -> None:
    """The parse worker waits for the next parse of the project: stop it, the project is gone."""
    from dagship.validate.parse import stop_forkservers

    stop_forkservers(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50, help="DAG files in the project")
    parser.add_argument("--repeats", type=int, default=5, help="timed deploys per figure")
    parser.add_argument("--local", action="store_true", help="parse with the Airflow here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dagship-parse-bench-"))
    bench = Bench(work)
    try:
        bench.start()
        figures = measure(bench, args.files, args.repeats, args.local)
    finally:
        bench.stop()
        stop_parse_workers(work / "project")
        shutil.rmtree(work, ignore_errors=True)

    ok = float(figures["added_s"]) <= ADDED_TARGET_S  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"One-file DAG deploy, {args.files} DAG files, median of {args.repeats}:")
        print(f"  with the parse check   {figures['one_file_parse_s']:.3f} s")
        print(f"  with --no-parse        {figures['one_file_no_parse_s']:.3f} s")
        print(
            f"  added by the check     {figures['added_s']:.3f} s "
            f"(ratio {figures['ratio']:.2f}; target <= {ADDED_TARGET_S} s: "
            f"{'met' if ok else 'MISSED'})"
        )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
