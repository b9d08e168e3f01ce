"""``dagship deploy``: deploy a project folder, uploading only what changed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli import waiting
from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    err,
    fail,
    human_bytes,
    out,
    plural,
    print_json,
    short,
)
from dagship.cli.deploys import checks_summary
from dagship.cli.progress import UploadBar
from dagship.cli.waiting import TimeoutOption
from dagship.core.vocabulary import Mode
from dagship.validate.gate import CheckPlan, DeployBlocked, run_checks

if TYPE_CHECKING:
    from dagship.flows.deploy import CheckDeploy, DeployResult
    from dagship.integrations.branch import BranchTarget

KIND_NAMES = {"dags": "DAGs", "project": "project", "full": "DAGs and project"}

# The checks before a deploy, shared with `dagship preview deploy`.
ParseOption = Annotated[
    bool | None,
    typer.Option(
        "--parse/--no-parse",
        help="Parse the DAGs (`dagship parse`) before deploying; a parse error blocks the "
        "deploy. Default: before deploys that change the project, not DAG-only ones. "
        "--no-parse deploys unchecked and records that the check was skipped.",
        show_default=False,
    ),
]
PytestOption = Annotated[
    bool,
    typer.Option(
        "--pytest", help="Also run the project's tests (`dagship test`); a failure blocks."
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Check with the Airflow installed next to dagship instead of the "
        "deployment's environment (built with uv from the Dockerfile or dagship.yaml).",
    ),
]


def deploy_command(
    path: Annotated[
        Path,
        typer.Argument(help="The project folder (the one holding dags/). Default: here."),
    ] = Path("."),
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", "-d", help="Deployment to deploy to.", show_default=False),
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            help="Deploy to the deployment dagship.yaml maps this branch to (`deployments:`); "
            "`auto`: the branch CI is building (or git's). A branch mapped to none deploys "
            "nothing and exits 0. Instead of --deployment.",
            show_default=False,
        ),
    ] = None,
    dags: Annotated[
        bool, typer.Option("--dags", help="Deploy only the DAG bundle (the dags/ folder).")
    ] = False,
    project: Annotated[
        bool, typer.Option("--project", help="Deploy only the project (everything but dags/).")
    ] = False,
    full: Annotated[
        bool,
        typer.Option("--full", help="Deploy both trees, even when only one of them changed."),
    ] = False,
    expect_seq: Annotated[
        int | None,
        typer.Option(
            "--expect-seq",
            help="Fail unless the deployment's current deploy is #N (0: no deploy yet).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Why: recorded with the deploy.")
    ] = None,
    parse: ParseOption = None,
    pytest: PytestOption = False,
    local: LocalOption = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Then wait until the deployment's Airflow has parsed the new version; "
            "exit 1 printing each import error (file and traceback).",
        ),
    ] = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a project: only the trees that changed, uploading only new files.

    Without --dags or --project, deploys what differs from the current deploy (DAGs, project
    or both). Nothing changed: no deploy is made and the exit code is 0 (with --wait, it waits
    for the current deploy). Before uploading, the DAGs are parsed (see --parse); a failed
    check blocks the deploy: nothing is uploaded and the exit code is 1.
    """
    if dags + project + full > 1:
        raise fail("--dags, --project and --full cannot be used together: pass one, or none", 2)
    if (deployment is None) == (branch is None):
        raise fail(
            "pass either --deployment NAME, or --branch auto (or --branch NAME) to pick the "
            "deployment from dagship.yaml's `deployments:` map; not both",
            2,
        )
    from dagship.flows.deploy import deploy

    started = waiting.now()
    target = None
    if branch is not None:
        from dagship.integrations.branch import branch_target

        target = branch_target(path, branch)
        deployment = target.deployment
        if deployment is None:
            render_unmapped(target, json)
            return
    assert deployment is not None
    mode = Mode.DAGS if dags else Mode.PROJECT if project else Mode.FULL if full else Mode.AUTO
    branch_fields = target.to_dict() if target else {}
    plan = CheckPlan(parse=parse, pytest=pytest, local=local)
    with client(url, token) as api, UploadBar(enabled=not json) as bar:
        try:
            result = deploy(
                api,
                path,
                deployment,
                mode,
                expect_seq,
                description,
                on_progress=bar,
                check=checker(path, plan, json),
            )
        except DeployBlocked as exc:
            render_blocked(exc, deployment, json)
            raise
        if not json:
            if target:
                out.print(f"Branch {target.branch} ({target.source}) deploys to {deployment}.")
            render(result)
        if not wait:
            if json:
                print_json({**result.to_dict(), **branch_fields})
            return
        if not json:
            err.print(f"Uploaded: deploy #{result.seq} ({result.id}).")
        waited = waiting.follow(api, result.id, timeout, json, started)
    waiting.finish({**result.to_dict(), **branch_fields}, waited, timeout, json)


def checker(path: Path, plan: CheckPlan, json: bool) -> CheckDeploy:
    """The checks to run once the deploy's kind is known (client.deploy's ``check``)."""
    return lambda kind: run_checks(
        path, kind, plan, on_progress=None if json else progress, on_test_output=echo
    )


def progress(message: str) -> None:
    err.print(message, markup=False)


def echo(line: str) -> None:
    # The tests' output goes to stderr, so that stdout stays the deploy's (or its --json).
    sys.stderr.write(line)
    sys.stderr.flush()


def render_blocked(blocked: DeployBlocked, deployment: str, json: bool) -> None:
    """What a blocked deploy prints before its error: the parse report, as `dagship parse`."""
    report = blocked.report
    if json:
        print_json(
            {
                "blocked": True,
                "deployment": deployment,
                "kind": blocked.kind,
                "checks": blocked.checks,
                "error": str(blocked),
                "parse": report.to_dict() if report is not None else None,
            }
        )
    elif report is not None:
        from dagship.cli.parse import render_report

        render_report(report)


def render_unmapped(target: BranchTarget, json: bool) -> None:
    """A build whose branch maps to no deployment: one line (or JSON), nothing deployed."""
    if json:
        print_json({**target.to_dict(), "deployed": False})
    else:
        out.print(f"{target.reason[0].upper()}{target.reason[1:]}." if target.reason else "")


def render(result: DeployResult) -> None:
    if result.unchanged:
        out.print(
            f"Deployment {result.deployment} is unchanged (deploy #{result.seq}); "
            "nothing to deploy."
        )
        return
    deploy = result.deploy
    out.print(
        f"Deployed {KIND_NAMES.get(result.kind, result.kind)} to {result.deployment}: "
        f"deploy #{result.seq} ({result.id})."
    )
    out.print(
        f"  DAG bundle  {short(result.dags_version)}  "
        f"({plural(int(deploy.get('dags_files') or 0), 'file')})"
    )
    out.print(
        f"  project     {short(result.project_version)}  "
        f"({plural(int(deploy.get('project_files') or 0), 'file')})"
    )
    out.print(
        f"  uploaded    {plural(result.uploaded_files, 'file')}, "
        f"{human_bytes(result.uploaded_bytes)}"
    )
    out.print(f"  checks      {checks_summary(deploy)}")
