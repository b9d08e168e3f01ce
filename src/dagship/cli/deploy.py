"""``dagship deploy``: deploy a project folder, uploading only what changed."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    short,
    show,
)
from dagship.cli.deploys import checks_summary
from dagship.cli.hints import message
from dagship.cli.options import (
    AllowEmptyOption,
    AllowRemovalsOption,
    DagsOption,
    DeployDescriptionOption,
    ExpectSeqOption,
    LocalOption,
    ParseOption,
    ProjectOnlyOption,
    ProjectPathArg,
    PytestOption,
    RollbackOnFailureOption,
    TimeoutOption,
    WaitOption,
)
from dagship.cli.progress import UploadBar
from dagship.client.errors import ApiError
from dagship.core.vocabulary import ErrorCode, Kind, Mode
from dagship.validate.gate import CheckPlan, DeployBlocked, run_checks

if TYPE_CHECKING:
    from dagship.flows.deploy import CheckDeploy, DeployResult
    from dagship.integrations.branch import BranchTarget
    from dagship.validate.parse import ParseReport

KIND_NAMES = {Kind.DAGS: "DAGs", Kind.PROJECT: "project", Kind.FULL: "DAGs and project"}

DeploymentOption = Annotated[
    str | None,
    typer.Option("--deployment", "-d", help="Deployment to deploy to.", show_default=False),
]
BranchOption = Annotated[
    str | None,
    typer.Option(
        "--branch",
        help="Deploy to the deployment dagship.yaml maps this branch to (`deployments:`); "
        "`auto`: the branch CI is building (or git's). A branch mapped to none deploys "
        "nothing and exits 0. Instead of --deployment.",
        show_default=False,
    ),
]
FullOption = Annotated[
    bool, typer.Option("--full", help="Deploy both trees, even when only one of them changed.")
]


def deploy_command(
    path: ProjectPathArg = Path("."),
    deployment: DeploymentOption = None,
    branch: BranchOption = None,
    dags: DagsOption = False,
    project: ProjectOnlyOption = False,
    full: FullOption = False,
    expect_seq: ExpectSeqOption = None,
    description: DeployDescriptionOption = None,
    parse: ParseOption = None,
    pytest: PytestOption = False,
    local: LocalOption = False,
    allow_empty: AllowEmptyOption = False,
    allow_removals: AllowRemovalsOption = False,
    wait: WaitOption = False,
    rollback_on_failure: RollbackOnFailureOption = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a project: only the trees that changed, uploading only new files.

    Without --dags or --project, deploys what differs from the current deploy (DAGs, project
    or both). Nothing changed: no deploy is made and the exit code is 0 (with --wait, it waits
    for the current deploy). Before uploading, the DAGs are parsed (see --parse); a failed
    check blocks the deploy: nothing is uploaded and the exit code is 1. A deploy that would
    empty the DAG bundle, or remove most of its files, is refused (exit 1) unless
    --allow-empty or --allow-removals says it is meant.
    """
    mode = deploy_mode(dags, project, full)
    target = _branch_target(path, deployment, branch)
    if target is not None and target.deployment is None:
        render_unmapped(target, json)
        return
    name = target.deployment if target is not None else deployment
    assert name is not None
    from dagship.flows.promote import protected_source

    started = waiting.now()
    plan = CheckPlan(parse=parse, pytest=pytest, local=local)
    run = deployer(path, plan, allow_empty, allow_removals, json)
    conclude = concluder(wait, timeout, json, started, rollback_on_failure)
    with client(url, token) as api, UploadBar(enabled=not json) as bar:
        # A branch mapped to a promote-only deployment deploys to its source, then promotes.
        source = protected_source(api, name) if target is not None else None
        to = source or name
        with blocked_report(to, json), refused_report(to, json):
            result = run(api, path, to, mode, expect_seq, description, bar)
        if source is not None and target is not None:
            from dagship.cli.protected import promote_deployed

            promote_deployed(api, result, target, conclude, (wait, timeout, json, started))
            return
        document = {**result.to_dict(), **(target.to_dict() if target else {})}
        conclude(
            api, document, result.deploy, lambda: render(result, target), made=not result.unchanged
        )


def deployer(
    path: Path, plan: CheckPlan, allow_empty: bool, allow_removals: bool, json: bool
) -> Callable[..., DeployResult]:
    """``flows.deploy.deploy`` with the command's checks and guard-rail options bound."""
    from dagship.flows.deploy import Allow, deploy

    return functools.partial(
        deploy,
        check=checker(path, plan, json),
        allow=Allow(empty=allow_empty, removals=allow_removals),
        # Only a check that runs is worth asking the server first whether it takes the deploy.
        check_takes_time=plan.runs_anything,
    )


def concluder(
    wait: bool, timeout: float, json: bool, started: float, rollback_on_failure: bool
) -> Callable[..., None]:
    """``waiting.conclude`` with the command's options about waiting bound."""
    return functools.partial(
        waiting.conclude,
        wait=wait,
        timeout=timeout,
        json=json,
        started=started,
        rollback_on_failure=rollback_on_failure,
    )


def deploy_mode(dags: bool, project: bool, full: bool = False) -> Mode:
    """What to deploy, from --dags, --project and --full (at most one)."""
    given = [
        flag for flag, on in (("--dags", dags), ("--project", project), ("--full", full)) if on
    ]
    if len(given) > 1:
        raise fail(f"{' and '.join(given)} cannot be used together: pass one, or none", 2)
    return Mode.DAGS if dags else Mode.PROJECT if project else Mode.FULL if full else Mode.AUTO


def _branch_target(path: Path, deployment: str | None, branch: str | None) -> BranchTarget | None:
    """Where dagship.yaml sends ``branch`` (None when deploying to --deployment)."""
    if (deployment is None) == (branch is None):
        raise fail(
            "pass either --deployment NAME, or --branch auto (or --branch NAME) to pick the "
            "deployment from dagship.yaml's `deployments:` map; not both",
            2,
        )
    if branch is None:
        return None
    from dagship.integrations.branch import branch_target

    return branch_target(path, branch)


def checker(path: Path, plan: CheckPlan, json: bool) -> CheckDeploy:
    """The checks to run once the deploy's kind is known (client.deploy's ``check``)."""
    return lambda kind: run_checks(
        path, kind, plan, on_progress=None if json else progress, on_test_output=echo
    )


def progress(message: str) -> None:
    err.print(message)


def echo(line: str) -> None:
    # The tests' output goes to stderr, so that stdout stays the deploy's (or its --json).
    sys.stderr.write(line)
    sys.stderr.flush()


@contextlib.contextmanager
def blocked_report(deployment: str, json: bool) -> Iterator[None]:
    """A blocked deploy prints, before its error, the parse report (as `dagship parse`)."""
    try:
        yield
    except DeployBlocked as blocked:
        report = blocked.report
        document = {
            "blocked": True,
            "deployment": deployment,
            "kind": blocked.kind,
            "checks": blocked.checks,
            "error": str(blocked),
            "parse": report.to_dict() if report is not None else None,
        }
        show(document, lambda: _render_parse(report), json)
        raise


# The server's refusals that a deploy's --json reports as a document, not only on stderr.
REFUSALS = (ErrorCode.EMPTY_DEPLOY, ErrorCode.TOO_MANY_REMOVALS, ErrorCode.PROMOTE_ONLY)


@contextlib.contextmanager
def refused_report(deployment: str, json: bool) -> Iterator[None]:
    """A deploy the guard rails refuse prints, before its error, the DAG files it would have
    removed (a sample); with --json, a document with the refusal's ``code``,
    ``removed_files`` and ``sample``."""
    try:
        yield
    except ApiError as refused:
        if refused.code not in REFUSALS:
            raise
        body = refused.body
        document = {
            "deployed": False,
            "refused": True,
            "deployment": deployment,
            "code": refused.code,
            "error": message(refused),
            "removed_files": body.get("removed_files"),
            "current_files": body.get("current_files"),
            "sample": body.get("sample") or [],
        }
        show(document, lambda: _render_removed(document), json)
        raise


def _render_removed(document: dict[str, Any]) -> None:
    sample = document["sample"]
    if not sample:
        return
    removed = document["removed_files"]
    err.print(f"DAG files this deploy would remove ({len(sample)} of {removed}):")
    for path in sample:
        err.print(f"  - {path}", style="red")


def _render_parse(report: ParseReport | None) -> None:
    if report is not None:
        from dagship.cli.parse import render_report

        render_report(report)


def render_unmapped(target: BranchTarget, json: bool) -> None:
    """A build whose branch maps to no deployment: one line (or JSON), nothing deployed."""
    reason = f"{target.reason[0].upper()}{target.reason[1:]}." if target.reason else ""
    show({**target.to_dict(), "deployed": False}, lambda: out.print(reason), json)


def render(result: DeployResult, target: BranchTarget | None = None) -> None:
    if target is not None:
        out.print(f"Branch {target.branch} ({target.source}) deploys to {result.deployment}.")
    deploy = result.deploy
    if result.unchanged:
        out.print(
            f"Deployment {deploy.deployment} is unchanged (deploy #{deploy.seq}); "
            "nothing to deploy."
        )
        return
    out.print(
        f"Deployed {KIND_NAMES[deploy.kind]} to {deploy.deployment}: "
        f"deploy #{deploy.seq} ({deploy.id})."
    )
    out.print(f"  DAG bundle  {short(deploy.dags_version)}  ({plural(deploy.dags_files, 'file')})")
    out.print(
        f"  project     {short(deploy.project_version)}  ({plural(deploy.project_files, 'file')})"
    )
    out.print(
        f"  uploaded    {plural(result.uploaded_files, 'file')}, "
        f"{human_bytes(result.uploaded_bytes)}"
    )
    out.print(f"  checks      {checks_summary(deploy)}")
