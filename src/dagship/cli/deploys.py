"""``dagship deploys``: the deploy history of a deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dagship.cli import waiting
from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    commit_label,
    git_summary,
    human_bytes,
    out,
    plural,
    print_grid,
    short,
    show,
    when,
)
from dagship.cli.options import TimeoutOption
from dagship.core.refs import FORMS

if TYPE_CHECKING:
    from dagship.core.schemas import DeployOut, DiffOut

app = typer.Typer(
    help="List, inspect and compare deploys.\n\nA deploy is named the same way everywhere "
    "(these commands, `rollback --to`, `promote --from`): " + FORMS + ".",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    deployment: Annotated[str, typer.Argument(metavar="NAME", help="Deployment name.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 20,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List a deployment's deploys, newest first: kind, origin, who made it (the token's
    description, else its id), git commit, versions, time and description."""
    with client(url, token) as api:
        deploys = api.list_deploys(deployment, limit)
    document = [{**item.model_dump(mode="json"), "unchanged": False} for item in deploys]
    show(document, lambda: _render_list(deployment, deploys), json)


def _render_list(deployment: str, deploys: list[DeployOut]) -> None:
    if not deploys:
        out.print(
            f"Deployment {deployment} has no deploys yet: run `dagship deploy -d {deployment}`."
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("SEQ", "ID", "KIND", "ORIGIN", "WHO", "COMMIT", "DAGS", "REMOVED", "PROJECT"):
        table.add_column(column)
    table.add_column("CREATED")
    table.add_column("DESCRIPTION")
    for item in deploys:
        table.add_row(
            f"#{item.seq}",
            item.id,
            item.kind,
            origin(item),
            who(item),
            git_summary(item),
            short(item.dags_version, 8),
            removed(item),
            short(item.project_version, 8),
            when(item.created_at),
            item.description or "",
        )
    out.print(table)


_REF_HELP = FORMS + "."
RefArgument = Annotated[str, typer.Argument(metavar="REF", help="The deploy: " + _REF_HELP)]


@app.command()
def inspect(
    ref: RefArgument,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show one deploy: versions, files, who and why."""
    from dagship.flows.refs import resolve

    with client(url, token) as api:
        deploy = resolve(api, ref)
    show(deploy, lambda: render_deploy(deploy), json)


@app.command()
def wait(
    ref: RefArgument,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Wait until the deployment's agents run a deploy's project version (when it changes
    the project) and its Airflow has parsed the deploy; exit 1 on an agent's failure or
    import errors.

    Progress goes to stderr; every import error is printed with its file and traceback, every
    failed agent with its host and error.
    """
    from dagship.flows.refs import resolve

    started = waiting.now()
    with client(url, token) as api:
        result = waiting.follow(api, resolve(api, ref).id, timeout, json, started)
    status = result.status
    document = {
        "deploy_id": status.deploy_id,
        "seq": status.seq,
        "deployment": status.deployment,
        "dags_version": status.dags_version,
        **result.to_dict(),
    }
    waiting.finish(document, result, timeout, json)


@app.command()
def diff(
    from_ref: Annotated[str, typer.Argument(metavar="A", help="From: " + _REF_HELP)],
    to_ref: Annotated[str, typer.Argument(metavar="B", help="To: " + _REF_HELP)],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Files added (+), removed (-) and changed (~) from deploy A to deploy B.

    A and B may be in different deployments: `dagship deploys diff prod dev` shows what
    `dagship promote --from dev --to prod` would change.
    """
    with client(url, token) as api:
        result = api.diff_refs(from_ref, to_ref)
    show(result, lambda: _render_diff_of(result), json)


def _render_diff_of(result: DiffOut) -> None:
    out.print(f"From {_label(result.from_)} to {_label(result.to)}:")
    render_diff(result)


def _label(deploy: DeployOut) -> str:
    return f"{deploy.deployment} deploy #{deploy.seq} ({deploy.id})"


def render_diff(result: DiffOut) -> None:
    """Each tree's added, removed and changed files; "no changes" for an identical tree."""
    for tree, label in ((result.dags, "DAG bundle"), (result.project, "Project")):
        changes = [("+", "green", p) for p in tree.added]
        changes += [("-", "red", p) for p in tree.removed]
        changes += [("~", "yellow", p) for p in tree.changed]
        if not changes:
            out.print(f"{label}: no changes")
            continue
        out.print(
            f"{label}: {len(tree.added)} added, {len(tree.removed)} removed, "
            f"{len(tree.changed)} changed"
        )
        for sign, color, path in sorted(changes, key=lambda change: change[2]):
            out.print(f"  {sign} {path}", style=color)


def checks_summary(deploy: DeployOut) -> str:
    """``parse passed, pytest not-run``: what the client checked before the deploy."""
    return f"parse {deploy.checks.parse}, pytest {deploy.checks.pytest}"


def render_deploy(deploy: DeployOut) -> None:
    rows = [
        ("Deploy", f"#{deploy.seq} {deploy.id}"),
        ("Deployment", deploy.deployment),
        ("Kind", deploy.kind),
        ("Origin", origin(deploy)),
        ("Created", when(deploy.created_at)),
        ("Who", who(deploy)),
        ("DAG version", f"{deploy.dags_version} ({plural(deploy.dags_files, 'file')})"),
        ("Removed", f"{removed(deploy)} DAG file(s) of the deploy before"),
        (
            "Project version",
            f"{deploy.project_version} ({plural(deploy.project_files, 'file')})",
        ),
        (
            "Uploaded",
            f"{plural(deploy.uploaded_files, 'file')}, {human_bytes(deploy.uploaded_bytes)}",
        ),
        ("Token", deploy.token_id or "-"),
        ("Git commit", commit_label(deploy.git_sha, deploy.git_dirty)),
        ("Git branch", deploy.git_branch or "-"),
        ("Git author", deploy.git_author or "-"),
        ("Git message", (deploy.git_message or "-").splitlines()[0]),
        ("Description", deploy.description or "-"),
        ("Checks", checks_summary(deploy)),
    ]
    if deploy.source_deployment:
        rows.append(
            (
                "Promoted from",
                f"{deploy.source_deployment} deploy #{deploy.source_seq} "
                f"({deploy.source_deploy_id})",
            )
        )
    elif deploy.source_deploy_id:
        rows.append(("Copied from", deploy.source_deploy_id))
    print_grid(rows)


def removed(deploy: DeployOut) -> str:
    """How many DAG files the deploy removed ("-" for deploys made before it was counted)."""
    return "-" if deploy.dags_removed is None else str(deploy.dags_removed)


def who(deploy: DeployOut) -> str:
    """Who made a deploy: its token's description, else the token's id."""
    return deploy.token_description or deploy.token_id or "-"


def origin(deploy: DeployOut) -> str:
    """The origin, with the source of a promotion: ``promote from dev#5``."""
    if deploy.source_deployment:
        return f"{deploy.origin} from {deploy.source_deployment}#{deploy.source_seq}"
    return str(deploy.origin)
