"""The Kubernetes values (deploy/kubernetes/values.yaml, docs/kubernetes.md) run each Airflow
component of the official Helm chart through ``dagship agent run``: the chart's keys as the
chart spells them, a valid component each, and arguments the agent's own parser accepts."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from dagship.agent.loop import check_components
from dagship.cli.main import app
from dagship.core.durations import parse_duration
from dagship.core.vocabulary import Component

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "kubernetes" / "values.yaml"
DOCKERFILE = ROOT / "deploy" / "kubernetes" / "Dockerfile"
DOCS = ROOT / "docs" / "kubernetes.md"

# The chart's section of each Airflow component, and what the agent runs in it.
CHART_SECTIONS = {
    "scheduler": Component.SCHEDULER,
    "apiServer": Component.API_SERVER,
    "dagProcessor": Component.DAG_PROCESSOR,
    "triggerer": Component.TRIGGERER,
    "workers": Component.CELERY_WORKER,
}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def agent_argv(section: dict[str, Any]) -> list[str]:
    """The ``dagship agent run`` arguments of a component's container, as the chart's default
    ``args: [bash, -c, "exec airflow ..."]`` form runs them."""
    assert section.get("command") is None  # the image's entrypoint stays (dumb-init, user)
    args = section["args"]
    assert args[:2] == ["bash", "-c"] and len(args) == 3, args
    words = shlex.split(args[2])
    assert words[:4] == ["exec", "dagship", "agent", "run"], words
    return words[4:]


def parse_agent_run(argv: list[str]) -> dict[str, Any]:
    """``dagship agent run ARGV`` parsed and validated by the CLI's own parser, not run."""
    run = typer.main.get_command(app).commands["agent"].commands["run"]  # type: ignore[attr-defined]
    with run.make_context("dagship agent run", list(argv)) as context:
        return dict(context.params)


@pytest.mark.parametrize("section_name", sorted(CHART_SECTIONS))
def test_each_component_runs_through_the_agent(values: dict[str, Any], section_name: str) -> None:
    params = parse_agent_run(agent_argv(values[section_name]))
    assert params["deployment"] == "prod"
    assert params["components"] == [CHART_SECTIONS[section_name]]
    check_components(params["components"])
    assert parse_duration(params["grace_period"]) > 0
    # The agent's home is on the pod's dagship volume, where the chart's airflow.cfg is mounted.
    assert str(params["home"]) == "/opt/dagship/agent"
    mounts = {m["name"]: m for m in values[section_name]["extraVolumeMounts"]}
    assert mounts["dagship"]["mountPath"] == "/opt/dagship"
    assert mounts["config"] == {
        "name": "config",
        "mountPath": "/opt/dagship/agent/airflow/airflow.cfg",
        "subPath": "airflow.cfg",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in values[section_name]["extraVolumes"]}
    assert "emptyDir" in volumes["dagship"] or "persistentVolumeClaim" in volumes["dagship"]


def test_the_parser_refuses_what_the_agent_cannot_run() -> None:
    with pytest.raises(typer.BadParameter, match="'webserver' is not one of"):
        parse_agent_run(["--deployment", "prod", "--component", "webserver"])
    with pytest.raises(typer.BadParameter, match="Missing parameter: deployment"):
        parse_agent_run(["--component", "scheduler"])


def test_the_celery_worker_finishes_its_tasks_before_the_pod_ends(values: dict[str, Any]) -> None:
    workers = values["workers"]
    params = parse_agent_run(agent_argv(workers))
    assert workers["terminationGracePeriodSeconds"] > parse_duration(params["grace_period"])


def test_the_token_comes_from_a_secret_and_the_cache_from_the_volume(
    values: dict[str, Any],
) -> None:
    assert values["secret"] == [
        {"envName": "DAGSHIP_API_TOKEN", "secretName": "dagship-agent", "secretKey": "token"}
    ]
    env = {item["name"]: item["value"] for item in values["env"]}
    assert "DAGSHIP_API_TOKEN" not in env
    assert env["DAGSHIP_CACHE_DIR"].startswith("/opt/dagship/")
    assert env["UV_CACHE_DIR"].startswith(env["DAGSHIP_CACHE_DIR"])  # hard links, one volume
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].endswith("/execution/")
    assert values["executor"] == "CeleryExecutor"
    # The agent's dagship DAG bundle is the only one: no chart DAG sources.
    assert values["dags"]["gitSync"]["enabled"] is False
    assert values["dags"]["persistence"]["enabled"] is False


def test_the_image_and_the_docs_match_the_values(values: dict[str, Any]) -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert f"ARG AIRFLOW_VERSION={values['airflowVersion']}" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile
    assert values["images"]["airflow"]["tag"] == values["airflowVersion"]
    docs = DOCS.read_text(encoding="utf-8")
    assert "deploy/kubernetes/values.yaml" in docs and "deploy/kubernetes/Dockerfile" in docs
    for section_name in CHART_SECTIONS:
        assert f"`{section_name}`" in docs
