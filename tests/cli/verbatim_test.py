"""Text from users, the server and Airflow is printed as it is, never read as Rich markup.

Brackets (`list[str]`, `[/tmp/x]`, `[bold]`) and emoji codes (`:warning:`) are ordinary text in
tracebacks, paths, descriptions and URLs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagship.cli.parse import render_report
from dagship.cli.quickstart import render as render_quickstart
from dagship.core.schemas import DeployOut
from dagship.flows.deploy import DeployResult
from dagship.local.quickstart import LocalAirflow, QuickstartResult
from dagship.local.server import LocalServer
from dagship.validate.parse import DagInfo, FileResult, ParseError, ParseReport
from tests.helpers import Api, Cli, free_port, unique, write

TEXT = "[bold]x[/bold] [/tmp/x] list[str] :warning:"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/tmp/[x]/dags/etl.py", line 3, in <module>\n'
    "    def rows(names: list[str]) -> dict[str, int]:\n"
    "FileNotFoundError: [Errno 2] No such file: '[/tmp/x]' :warning:"
)


def a_deploy(**fields: Any) -> DeployOut:
    return DeployOut.model_validate(
        {
            "id": "dpl_0123456789abcdef",
            "seq": 1,
            "deployment": "local",
            "kind": "full",
            "origin": "cli",
            "dags_version": "sha256-" + "a" * 64,
            "project_version": "sha256-" + "b" * 64,
            "dags_files": 1,
            "project_files": 2,
            "uploaded_files": 3,
            "uploaded_bytes": 30,
            "created_at": "2026-11-26T04:30:00Z",
            "token_id": None,
            "git_sha": None,
            "git_branch": None,
            "git_author": None,
            "git_message": None,
            "description": None,
            "source_deploy_id": None,
            "checks": {"parse": "skipped"},
            "source_deployment": None,
            "source_seq": None,
            **fields,
        }
    )


def test_quickstart_prints_airflow_tracebacks_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "[home]"
    airflow = LocalAirflow(
        url="http://127.0.0.1:8080",
        home=home / "airflow",
        bundle_name="dagship-local",
        process=None,
        pid_file=home / "airflow.pid",
        dags=["etl"],
        import_errors=[{"filename": "/tmp/[x]/dags/etl.py", "stack_trace": TRACEBACK}],
    )
    result = QuickstartResult(
        server=LocalServer("http://127.0.0.1:8787", home),
        project_dir=tmp_path / "[/tmp/x]",
        scaffolded=[],
        created_deployment=False,
        deploy=DeployResult(a_deploy(), unchanged=False, uploaded_files=3, uploaded_bytes=30),
        airflow=airflow,
    )
    render_quickstart(result, None, detach=False)
    printed = capsys.readouterr()
    assert f"import error in /tmp/[x]/dags/etl.py:\n{TRACEBACK}\n" in printed.err
    assert f"Deployed {tmp_path / '[/tmp/x]'} to local" in printed.out
    assert f"data and logs in {home};" in printed.out


def test_parse_report_prints_paths_and_errors_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    error = ParseError("import", "No module named '[bold]x'", TRACEBACK, line=3)
    report = ParseReport(
        project="/tmp/[x]",
        airflow_version="3.1.0",
        python="python",
        environment_reused=True,
        files=[
            FileResult("dags/[bold]/ok.py", dags=[DagInfo("etl[v2]", 2)]),
            FileResult("dags/[bold]/bad.py", errors=[error]),
        ],
        skipped=["dags/[/tmp/x].py"],
        workers=1,
        forkserver_reused=False,
        seconds=0.1,
    )
    render_report(report)
    printed = capsys.readouterr().out
    assert "dags/[bold]/ok.py" in printed and "etl[v2]" in printed
    assert "Skipped dags/[/tmp/x].py" in printed
    assert "Error in dags/[bold]/bad.py:3 (import): No module named '[bold]x'" in printed
    assert "    def rows(names: list[str]) -> dict[str, int]:" in printed


def test_descriptions_are_printed_verbatim(cli: Cli, api: Api, project: Path) -> None:
    name = unique()
    cli("deployment", "create", name, "--description", TEXT).ok()
    cli("deploy", project, "-d", name, "--no-parse", "--description", TEXT).ok()
    deploy_id = cli("deploys", "list", name, "--json").ok().json()[0]["id"]
    for command in (
        ("deployment", "list"),
        ("deployment", "inspect", name),
        ("deploys", "list", name),
        ("deploys", "inspect", deploy_id),
    ):
        shown = cli(*command).ok().out
        assert TEXT in shown, (command, shown)


def test_airflow_url_is_printed_verbatim_while_waiting(cli: Cli, project: Path) -> None:
    name = unique()
    # The server refuses brackets in an Airflow URL; an emoji code is what Rich would still
    # turn into something else.
    airflow = f"http://127.0.0.1:{free_port()}/a:thumbs_up:b"
    cli("deployment", "create", name, "--airflow-url", airflow).ok()
    # DAGs only: a project deploy would first wait for agents (tests/cli/agents_test.py).
    deployed = cli("deploy", project, "-d", name, "--dags", "--no-parse", "--json").ok().json()
    result = cli("deploys", "wait", deployed["id"], "--timeout", "1")
    result.failed("timed out")
    assert f"Waiting for Airflow at {airflow} to pick up" in result.err


def test_unmapped_branch_is_printed_verbatim(cli: Cli, project: Path) -> None:
    write(project, "dagship.yaml", "deployments:\n  main: prod\n")
    shown = cli("deploy", project, "--branch", "[/tmp/x]").ok().out
    assert "Branch [/tmp/x] maps to no deployment" in shown
