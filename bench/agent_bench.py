#!/usr/bin/env python3
"""Project deploys through `dagship agent`, one host, Airflow 3.3.2 standalone, measured against
Airflow's own start-up and a hand-written deploy script, in the same run.

agent, warm   `dagship deploy --project --wait` of a project that adds one small requirement,
              from the command's start to its exit 0 (every agent runs the new version): a new
              environment built with uv from its warm package cache, then the restart.
agent, cold   the same with an empty uv package cache for the agent (everything downloaded).
rollback      `dagship rollback --to N --wait` back to a version seen before: its environment is
              cached (the agent reports "reused"), so it is a restart. Target <= 30 s.
airflow       Airflow's own restart on this machine: `airflow standalone` stopped (SIGINT) and
              started until its health endpoint says healthy, same home and settings.
baseline      what a hand-written deploy script does: `uv pip install -r requirements.txt` into
              a fresh Airflow environment (made beforehand, not timed) plus that restart.

Run: python bench/agent_bench.py [--skip-cold] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import dagship.local.airflow as runtime
from dagship.agent.component_env import component_environment
from dagship.agent.home import AgentHome
from dagship.airflow_api.client import AirflowClient
from deploy_bench import Bench, dagship_command, free_port

DEPLOYMENT = "agentbench"
REQUIREMENT = "pyjokes"
ROLLBACK_TARGET_S = 30.0
SETTINGS = {
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "0",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "0",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
}


HELLO_DAG = """\
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="hello", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def hello():
    @task
    def say() -> str:
        from include.helpers import helper

        return helper()

    say()


hello()
"""


def write_project(root: Path, requirements: str, helper: str) -> None:
    files = {
        "dags/hello.py": HELLO_DAG,
        "include/helpers.py": f"def helper() -> str:\n    return {helper!r}\n",
        "requirements.txt": requirements,
        "dagship.yaml": "airflow_version: 3.3.2\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


class AgentBench:
    def __init__(self, work: Path, bench: Bench) -> None:
        self.work = work
        self.bench = bench
        self.port = free_port()
        self.home = work / "agent"
        self.project = work / "project"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {**bench.env, **SETTINGS, "AIRFLOW__API__PORT": str(self.port)}
        self.env["DAGSHIP_CACHE_DIR"] = str(work / "dagship-cache")

    def start_agent(self, extra: dict[str, str] | None = None) -> None:
        log = (self.work / "agent.out").open("ab")
        self.process = subprocess.Popen(
            [*dagship_command(), "agent", "run", "-d", DEPLOYMENT, "--home", str(self.home)],
            env={**self.env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_reported(self) -> None:
        """Until the agent has reported (a deploy before that finds no agent to wait for)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, out = self.bench.cli("deployment", "inspect", DEPLOYMENT, "--json")
            if json.loads(out).get("agents"):
                return
            time.sleep(0.5)
        raise SystemExit("the agent did not report within 120 s: see agent.out")

    def stop_agent(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(300)

    def deploy(self, requirements: str, helper: str) -> float:
        write_project(self.project, requirements, helper)
        wall, _ = self.bench.cli(
            "deploy", str(self.project), "-d", DEPLOYMENT, "--no-parse", "--wait",
            "--timeout", "900",
        )  # fmt: skip
        return wall

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "agent-state.json").read_text()))


def airflow_restart(agent: AgentBench, python: Path) -> tuple[float, float]:
    """(stop, start) seconds of `airflow standalone` with the agent's home and settings."""
    state = agent.state()
    home = AgentHome(agent.home)
    env = component_environment(
        home.airflow_home,
        home.projects / state["current"],
        python.parent,
        home.python_path,
        agent.bench.url,
        DEPLOYMENT,
        agent.env["DAGSHIP_API_TOKEN"],
        agent.env,
    )
    process = _start_standalone(env, agent.work / "standalone.log")
    _wait_healthy(agent.port, process)
    started = time.perf_counter()
    process.send_signal(signal.SIGINT)
    process.wait(300)
    stopped = time.perf_counter() - started
    started = time.perf_counter()
    process = _start_standalone(env, agent.work / "standalone.log")
    _wait_healthy(agent.port, process)
    start = time.perf_counter() - started
    process.send_signal(signal.SIGINT)
    process.wait(300)
    return stopped, start


def _start_standalone(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(env["PATH"].split(os.pathsep)[0]) / "airflow"), "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    with AirflowClient(f"http://127.0.0.1:{port}") as client:
        while not runtime.is_healthy(client.health()):
            if process.poll() is not None:
                raise SystemExit("airflow standalone exited while starting")
            time.sleep(0.2)


def baseline_install(work: Path) -> float:
    """`uv pip install -r requirements.txt` (one new small requirement) into a fresh Airflow
    environment made beforehand."""
    venv = work / "baseline-env"
    uv = shutil.which("uv") or "uv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "apache-airflow==3.3.2"], check=True
    )
    requirements = work / "baseline-requirements.txt"
    requirements.write_text(f"{REQUIREMENT}\n")
    started = time.perf_counter()
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "-r", str(requirements)], check=True
    )
    return time.perf_counter() - started


def run(skip_cold: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    bench = Bench(work)
    bench.start()
    agent = AgentBench(work, bench)
    figures: dict[str, Any] = {}
    try:
        bench.cli(
            "deployment", "create", DEPLOYMENT, "--airflow-url", f"http://127.0.0.1:{agent.port}"
        )
        agent.start_agent()
        agent.wait_reported()
        figures["first_apply_s"] = agent.deploy("cowsay\n", "v1")
        first = agent.state()["current"]
        figures["warm_s"] = agent.deploy(f"cowsay\n{REQUIREMENT}\n", "v2")
        assert agent.state()["last_apply"]["environment"] == "built"
        seq = _seq_of(bench, first)
        figures["rollback_s"], _ = bench.cli(
            "rollback", DEPLOYMENT, "--to", str(seq), "--wait", "--timeout", "600"
        )
        assert agent.state()["last_apply"]["environment"] == "reused"
        if not skip_cold:
            agent.stop_agent()
            agent.start_agent({"UV_CACHE_DIR": str(work / "cold-uv-cache")})
            time.sleep(25)  # the stopped agent's last report is fresh: let this one report
            agent.wait_reported()
            figures["cold_s"] = agent.deploy(f"cowsay\n{REQUIREMENT}\n# cold\n", "v3")
        agent.stop_agent()
        python = _environment_python(agent)
        figures["airflow_stop_s"], figures["airflow_start_s"] = airflow_restart(agent, python)
        figures["baseline_install_s"] = baseline_install(work)
    finally:
        agent.stop_agent()
        bench.stop()
    restart = figures["airflow_stop_s"] + figures["airflow_start_s"]
    figures["airflow_restart_s"] = restart
    figures["baseline_s"] = figures["baseline_install_s"] + restart
    figures["rollback_vs_airflow_restart"] = figures["rollback_s"] / restart
    figures["warm_vs_baseline"] = figures["warm_s"] / figures["baseline_s"]
    figures["rollback_target_met"] = figures["rollback_s"] <= ROLLBACK_TARGET_S
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _seq_of(bench: Bench, project_version: str) -> int:
    _, out = bench.cli("deploys", "list", DEPLOYMENT, "--json")
    return next(int(d["seq"]) for d in json.loads(out) if d["project_version"] == project_version)


def _environment_python(agent: AgentBench) -> Path:
    """The interpreter of the environment the agent's current version runs in."""
    from dagship.environment.build import ensure_environment

    os.environ["DAGSHIP_CACHE_DIR"] = agent.env["DAGSHIP_CACHE_DIR"]
    return ensure_environment(agent.home / "projects" / agent.state()["current"]).python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-cold", action="store_true", help="Skip the cold uv cache run.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()
    figures = run(args.skip_cold)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"first apply (build + migrate + start) {figures['first_apply_s']:7.1f} s")
    print(f"project deploy, new requirement, warm {figures['warm_s']:7.1f} s")
    if "cold_s" in figures:
        print(f"project deploy, new requirement, cold {figures['cold_s']:7.1f} s")
    met = "met" if figures["rollback_target_met"] else "missed"
    print(f"rollback (cached environment)         {figures['rollback_s']:7.1f} s "
          f"(target <= {ROLLBACK_TARGET_S:.0f} s: {met})")  # fmt: skip
    print(f"airflow standalone stop + start       {figures['airflow_restart_s']:7.1f} s "
          f"({figures['airflow_stop_s']:.1f} + {figures['airflow_start_s']:.1f})")  # fmt: skip
    print(f"baseline: uv pip install + restart    {figures['baseline_s']:7.1f} s "
          f"(install {figures['baseline_install_s']:.1f})")  # fmt: skip
    print(f"ratio rollback / airflow restart      {figures['rollback_vs_airflow_restart']:7.2f}")
    print(f"ratio warm deploy / baseline          {figures['warm_vs_baseline']:7.2f}")


if __name__ == "__main__":
    main()
