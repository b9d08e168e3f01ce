#!/usr/bin/env python3
"""Where a cold `dagship parse` spends its CPU, per DAG file, against one DagBag process.

The corpus and the environment are those of ``parse_bench.py``. Two processes are measured,
each in the environment's interpreter, with the CPU time each step takes (``process_time``, so
other work on a shared machine does not count):

- baseline: importing Airflow's DagBag and the libraries the DAG files import (the fixed start),
  then one ``DagBag`` per file (the per-file cost);
- worker: the forkserver's start (Airflow, the plugins, the same libraries, the warm-up), then
  per file what a parse worker does (processor.py): the DAG stability check, a new DagBag, the
  import, and Airflow's serialization of the DAGs.

From these it prints the best speed-up a cold parse can have over the baseline with N cores:
the forkserver's start comes before any worker, then the files are shared perfectly between
the cores, and nothing else costs anything (``dagship parse``'s own start and hashing run beside
the forkserver's). With the serialization and without it, to show what that check costs.
Run: .venv/bin/python bench/parse_cost_bench.py [--files 500] [--cores 2] [--local] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import parse_bench  # noqa: E402
from dagship.environment.build import ensure_environment  # noqa: E402

VALIDATE = HERE.parent / "src" / "dagship" / "validate"

# Runs in the environment's interpreter: prints one JSON line of CPU seconds.
MEASURE = r"""
import glob, importlib, importlib.util, json, logging, os, sys, time
clock = time.process_time
mode, dags, validate = sys.argv[1], sys.argv[2], sys.argv[3]
files = sorted(glob.glob(os.path.join(dags, "*.py")))
modules = json.loads(sys.argv[4])
logging.getLogger("airflow").setLevel(logging.ERROR)
steps = {}
if mode == "baseline":
    from airflow.dag_processing.dagbag import DagBag
    for name in modules:
        importlib.import_module(name)
    start = clock()
    for path in files:
        DagBag(dag_folder=path)
    steps["dagbag"] = clock() - start
else:
    from airflow.sdk.execution_time.supervisor import block_orm_access
    block_orm_access()
    source = os.path.join(validate, "processor.py")
    spec = importlib.util.spec_from_file_location("_dagship_processor", source)
    processor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(processor)
    bag_class, to_dict = processor.dagbag_class(), processor.serializer().to_dict
    processor.load_plugins()
    for name in modules:
        importlib.import_module(name)
    processor.warm_up(to_dict)
    for key in ("stability", "bag", "import", "serialize"):
        steps[key] = 0.0
    for path in files:
        a = clock(); processor._stability_check(path, dags)
        b = clock(); bag = processor.new_bag(bag_class, path, dags)
        c = clock(); found = bag.process_file(path, only_if_updated=False, safe_mode=True)
        d = clock(); failed = processor.serialize(found, to_dict)
        e = clock()
        assert found and not failed and not bag.import_errors, (path, bag.import_errors, failed)
        steps["stability"] += b - a; steps["bag"] += c - b; steps["import"] += d - c
        steps["serialize"] += e - d
total = clock()
print(json.dumps({"start": total - sum(steps.values()), "steps": steps, "files": len(files)}))
"""

# What the DAG files import at top level, as the forkserver preloads it.
MODULES = [
    "airflow.providers.common.sql.operators.sql",
    "airflow.providers.smtp.operators.smtp",
    "airflow.providers.standard.operators.bash",
    "airflow.providers.standard.operators.empty",
    "airflow.providers.standard.operators.python",
    "airflow.providers.standard.sensors.time_delta",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--tables", type=int, default=10, help="task groups per DAG (3 tasks)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--local", action="store_true", help="use this interpreter's Airflow")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dagship-parse-cost-"))
    os.environ.setdefault("DAGSHIP_CACHE_DIR", str(work / "cache"))
    try:
        figures = measure(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    else:
        print_figures(figures)
    return 0


def measure(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    project = work / "project"
    parse_bench.write_project_settings(project, args.local)
    environment = ensure_environment(project, local=args.local)
    heavy = (
        list(parse_bench.HEAVY_REQUIREMENTS)
        if not args.local
        else parse_bench._installed(environment, parse_bench.HEAVY_LOCAL)
    )
    for index in range(args.files):
        parse_bench.write_dag(project, index, args.tables, heavy)
    modules = json.dumps([*heavy, *MODULES])
    env = parse_bench._env(project)
    load = os.getloadavg()[0]

    def run(mode: str) -> dict[str, Any]:
        command = [str(environment.python), "-c", MEASURE, mode, str(project / "dags")]
        done = subprocess.run(
            [*command, str(VALIDATE), modules],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    baseline, worker = run("baseline"), run("worker")
    n, cores = args.files, args.cores
    per_file = {k: v / n for k, v in worker["steps"].items()}
    b, w = baseline["steps"]["dagbag"] / n, sum(per_file.values())
    baseline_s = baseline["start"] + n * b

    def bound(per: float) -> float:
        return baseline_s / (worker["start"] + n * per / cores)

    return {
        "files": n,
        "cores": cores,
        "airflow_version": environment.airflow_version,
        "baseline": {"start_s": round(baseline["start"], 3), "per_file_ms": round(1000 * b, 2)},
        "worker": {
            "start_s": round(worker["start"], 3),
            "per_file_ms": round(1000 * w, 2),
            "steps_ms": {k: round(1000 * v, 2) for k, v in per_file.items()},
        },
        "best_speedup": round(bound(w), 2),
        "best_speedup_without_serialization": round(bound(w - per_file["serialize"]), 2),
        "load_average_1min": round(max(load, os.getloadavg()[0]), 1),
    }


def print_figures(f: dict[str, Any]) -> None:
    base, worker = f["baseline"], f["worker"]
    print(
        f"{f['files']} DAG files, Airflow {f['airflow_version']}, CPU seconds "
        f"(load average {f['load_average_1min']})"
    )
    print(f"  baseline: start {base['start_s']:.2f} s, then {base['per_file_ms']:.1f} ms a file")
    steps = ", ".join(f"{k} {v:.1f}" for k, v in worker["steps_ms"].items())
    print(
        f"  worker:   start {worker['start_s']:.2f} s, then {worker['per_file_ms']:.1f} ms a file"
        f" ({steps})"
    )
    print(
        f"  best cold speed-up on {f['cores']} cores: {f['best_speedup']:.2f}x "
        f"({f['best_speedup_without_serialization']:.2f}x without the serialization check)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
