#!/usr/bin/env python3
"""Parse benchmark: `dagship parse` against one process running Airflow's DagBag, same corpus.

Generates --files DAG files with realistic top-level imports (the standard, common-sql and
smtp providers that ship with Apache Airflow 3.3.2, and heavy third-party modules: pandas and
numpy from the project's requirements.txt, or with --local whichever heavy modules the current
interpreter has) and dynamically generated tasks. In the same run and the same environment:

- baseline: one process importing Airflow and running ``DagBag`` over dags/ (what
  ``astro dev parse`` does inside its container), wall time;
- cold: ``dagship parse --no-cache`` (the pool of workers, every file imported);
- warm: ``dagship parse`` after changing one file (only that file is imported again, by a
  worker forked from the forkserver the cold parse left running, as it is by default);
- environment reuse: ``ensure_environment`` finding the already built environment.

Prints the ratios (targets: cold >= 1.7x faster than the baseline, warm <= 10 % of cold, in
every run; reuse <= 2 s). With --runs N the baseline, cold and warm parses are measured N times,
in turns (each cold parse with no forkserver left running), and each run's ratios are printed:
on a shared machine one run says little. Run:
.venv/bin/python bench/parse_bench.py [--files 500] [--runs 5] [--local] [--json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from dagship.environment.build import Environment, ensure_environment  # noqa: E402
from dagship.validate.parse import stop_forkservers  # noqa: E402

HEAVY_REQUIREMENTS = ("pandas", "numpy")
# With --local: heavy modules commonly imported at the top of DAG files, if installed.
HEAVY_LOCAL = ("pandas", "numpy", "pyarrow", "requests", "cryptography.fernet", "pydantic", "yaml")
TARGETS = {"cold_speedup": 1.7, "warm_fraction": 0.10, "reuse_s": 2.0}

DAG_TEMPLATE = '''"""Generated DAG {index}: load {tables} tables of team {team}."""

from __future__ import annotations

import datetime
{heavy_imports}
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.smtp.operators.smtp import EmailOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, TaskGroup

TABLES = [f"team_{team}_table_{{n}}" for n in range({tables})]
LIBRARIES = [{heavy_names}]


def transform(table: str, **context: object) -> str:
    return table.upper()


def choose(**context: object) -> str:
    return "full_load" if datetime.date.today().weekday() == 0 else "incremental_load"


with DAG(
    dag_id="generated_{index:04d}",
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["generated", "team_{team}"],
    default_args={{"retries": 2, "retry_delay": datetime.timedelta(minutes=5)}},
):
    wait = TimeDeltaSensor(task_id="wait", delta=datetime.timedelta(minutes=10))
    branch = BranchPythonOperator(task_id="branch", python_callable=choose)
    full = EmptyOperator(task_id="full_load")
    incremental = EmptyOperator(task_id="incremental_load")
    done = EmptyOperator(task_id="done", trigger_rule="none_failed_min_one_success")
    wait >> branch >> [full, incremental]
    for table in TABLES:
        with TaskGroup(group_id=table):
            extract = SQLExecuteQueryOperator(
                task_id="extract", conn_id="warehouse", sql=f"SELECT * FROM {{table}}"
            )
            load = PythonOperator(
                task_id="transform", python_callable=transform, op_kwargs={{"table": table}}
            )
            check = BashOperator(task_id="check", bash_command=f"echo checked {{table}}")
        [full, incremental] >> extract >> load >> check >> done
    done >> EmailOperator(
        task_id="notify", to="data@example.com", subject="done", html_content="ok"
    )
'''

BASELINE = """
import sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(len(bag.dags), len(bag.import_errors), time.perf_counter() - started)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--tables", type=int, default=10, help="task groups per DAG (3 tasks)")
    parser.add_argument("--jobs", type=int, default=None, help="dagship parse --jobs")
    parser.add_argument("--runs", type=int, default=1, help="baseline, cold and warm, N times")
    parser.add_argument("--local", action="store_true", help="use this interpreter's Airflow")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the generated project")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="dagship-parse-bench-"))
    os.environ.setdefault("DAGSHIP_CACHE_DIR", str(work / "cache"))
    # As users get by default: the forkserver of the cold parse serves the warm one.
    os.environ["DAGSHIP_PARSE_SERVER_IDLE"] = "120"
    try:
        figures = run(work, args)
    finally:
        stop_forkservers(work / "project")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    else:
        print_figures(figures)
    return 0


def write_project_settings(project: Path, local: bool) -> None:
    """An empty dags/ folder, dagship.yaml naming this Airflow and, unless ``local``, the heavy
    requirements: what the benchmarks' environment is built from."""
    (project / "dags").mkdir(parents=True)
    airflow = importlib.metadata.version("apache-airflow")
    (project / "dagship.yaml").write_text(f"airflow_version: {airflow}\n")
    if not local:
        (project / "requirements.txt").write_text("\n".join(HEAVY_REQUIREMENTS) + "\n")


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    project = work / "project"
    write_project_settings(project, args.local)

    started = time.perf_counter()
    environment = ensure_environment(project, local=args.local)
    build_s = time.perf_counter() - started
    heavy = list(HEAVY_REQUIREMENTS) if not args.local else _installed(environment, HEAVY_LOCAL)
    for index in range(args.files):
        write_dag(project, index, args.tables, heavy)

    started = time.perf_counter()
    reused = ensure_environment(project, local=args.local)
    reuse_s = time.perf_counter() - started

    runs = [_measure(environment, project, args) for _ in range(max(1, args.runs))]
    dags = runs[0]["dags"]
    return {
        "files": args.files,
        "tasks_per_dag": 3 * args.tables + 6,
        "heavy_modules": heavy,
        "airflow_version": environment.airflow_version,
        "environment": {
            "local": args.local,
            "built": not environment.reused,
            "build_s": round(build_s, 2),
            "reuse_s": round(reuse_s, 3),
            "reused": reused.reused,
        },
        "runs": runs,
        # The targets hold in every run: the worst run is the figure.
        "cold_speedup": min(run["cold_speedup"] for run in runs),
        "warm_fraction": max(run["warm_fraction"] for run in runs),
        "cold": runs[-1]["cold"],
        "warm": runs[-1]["warm"],
        "dags": dags,
        "cpus": os.cpu_count(),
        # Other work on the machine slows every figure; the ratios compare runs made minutes apart.
        "load_average_1min": round(os.getloadavg()[0], 1),
    }


def _measure(environment: Environment, project: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run: the baseline, a cold parse (no forkserver running, no cache), then a re-parse
    after a one-file change."""
    load = os.getloadavg()[0]
    baseline_s, baseline_dags = _baseline(environment, project)
    stop_forkservers(project)  # left by the previous run's warm parse
    cold_s, cold = _dagship(project, args, "--no-cache")
    if cold["dag_count"] != baseline_dags or not cold["ok"]:
        raise SystemExit(
            f"dagship found {cold['dag_count']} DAGs ({cold['error_count']} errors), "
            f"DagBag {baseline_dags}"
        )
    changed = project / "dags" / "dag_0000.py"
    # A change no earlier run has seen, so no cached result of any run can answer for it.
    changed.write_text(changed.read_text() + f"# changed {uuid.uuid4().hex}\n")
    warm_s, warm = _dagship(project, args)
    return {
        "baseline_dagbag_s": round(baseline_s, 2),
        "cold": {
            "wall_s": round(cold_s, 2),
            "workers": cold["workers"],
            "forkserver_reused": cold["forkserver_reused"],
        },
        "cold_speedup": round(baseline_s / cold_s, 2),
        "warm": {
            "wall_s": round(warm_s, 2),
            "imported": [f["path"] for f in warm["files"] if not f["cached"]],
            "forkserver_reused": warm["forkserver_reused"],
        },
        "warm_fraction": round(warm_s / cold_s, 3),
        "dags": baseline_dags,
        "load_average_1min": round(max(load, os.getloadavg()[0]), 1),
    }


def write_dag(project: Path, index: int, tables: int, heavy: list[str]) -> None:
    aliases = [name.replace(".", "_") for name in heavy]
    imports = "\n".join(
        f"import {name} as {alias}" for name, alias in zip(heavy, aliases, strict=True)
    )
    source = DAG_TEMPLATE.format(
        index=index,
        team=index % 7,
        tables=tables,
        heavy_imports=imports,
        heavy_names=", ".join(f"{alias}.__name__" for alias in aliases),
    )
    (project / "dags" / f"dag_{index:04d}.py").write_text(source)


def _installed(environment: Environment, modules: tuple[str, ...]) -> list[str]:
    code = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m.split('.')[0])]))"
    )
    done = subprocess.run(
        [str(environment.python), "-c", code, *modules], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(project.parent / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": os.pathsep.join([str(project), str(project / "dags")]),
        }
    )
    return env


def _baseline(environment: Environment, project: Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(environment.python), "-c", BASELINE, str(project / "dags")],
        env=_env(project),
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    dags, errors, _ = done.stdout.strip().splitlines()[-1].split()
    if int(errors):
        raise SystemExit(f"the generated corpus has {errors} import errors:\n{done.stderr[-3000:]}")
    return wall, int(dags)


def _dagship(project: Path, args: argparse.Namespace, *extra: str) -> tuple[float, dict[str, Any]]:
    command = [sys.executable, "-m", "dagship", "parse", str(project), "--json", *extra]
    if args.local:
        command.append("--local")
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    env = _env(project)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise SystemExit(f"dagship parse failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, dict(json.loads(done.stdout))


def print_figures(f: dict[str, Any]) -> None:
    env = f["environment"]
    print(
        f"corpus: {f['files']} DAG files, {f['tasks_per_dag']} tasks each, heavy imports "
        f"{', '.join(f['heavy_modules']) or '-'}; Airflow {f['airflow_version']}; {f['cpus']} CPUs"
        f" (load average {f['load_average_1min']})"
    )
    built = f"built in {env['build_s']:.1f} s" if env["built"] else "already built"
    print(f"environment: {'--local' if env['local'] else built}")
    for number, run in enumerate(f["runs"], 1):
        cold, warm = run["cold"], run["warm"]
        print(f"run {number} of {len(f['runs'])} (load average {run['load_average_1min']}):")
        print(f"  baseline, one process running DagBag: {run['baseline_dagbag_s']:7.2f} s")
        print(f"  dagship parse, cold ({cold['workers']} workers):  {cold['wall_s']:7.2f} s")
        print(f"  dagship parse, one file changed:      {warm['wall_s']:7.2f} s")
        print(
            f"  speed-up vs baseline {run['cold_speedup']:5.2f}x"
            f" (target >= {TARGETS['cold_speedup']}x), warm {run['warm_fraction']:6.1%} of cold"
            f" (target <= {TARGETS['warm_fraction']:.0%}), {len(warm['imported'])} imported"
        )
    print(f"worst run: speed-up {f['cold_speedup']:.2f}x, warm {f['warm_fraction']:.1%} of cold")
    print(
        f"reusing the environment:               {env['reuse_s']:7.3f} s"
        f"   (target <= {TARGETS['reuse_s']} s)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
