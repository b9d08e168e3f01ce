"""``dagship deploys``: the deploy history of a deployment."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dagship.cli import waiting
from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    git_summary,
    human_bytes,
    out,
    plural,
    print_json,
    short,
    when,
)
from dagship.cli.waiting import TimeoutOption

app = typer.Typer(help="List, inspect and compare deploys.", no_args_is_help=True)

_TREES = (("dags", "DAG bundle"), ("project", "Project"))


@app.command("list")
def list_(
    deployment: Annotated[str, typer.Argument(metavar="NAME", help="Deployment name.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 20,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List a deployment's deploys, newest first."""
    with client(url, token) as api:
        deploys = api.list_deploys(deployment, limit)
    if json:
        print_json([{**item, "unchanged": False} for item in deploys])
        return
    if not deploys:
        out.print(
            f"Deployment {deployment} has no deploys yet: run `dagship deploy -d {deployment}`."
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("SEQ", "ID", "KIND", "ORIGIN", "DAGS", "PROJECT", "GIT", "CREATED"):
        table.add_column(column)
    table.add_column("DESCRIPTION")
    for item in deploys:
        table.add_row(
            f"#{item['seq']}",
            item["id"],
            item["kind"],
            escape(origin(item)),
            short(item["dags_version"], 8),
            short(item["project_version"], 8),
            escape(git_summary(item)),
            when(item.get("created_at")),
            escape(item.get("description") or ""),
        )
    out.print(table)


@app.command()
def inspect(
    deploy_id: Annotated[str, typer.Argument(metavar="ID", help="Deploy id, e.g. dpl_3f9c….")],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show one deploy: versions, files, who and why."""
    with client(url, token) as api:
        deploy = api.get_deploy(deploy_id)
    if json:
        print_json(deploy)
        return
    render_deploy(deploy)


@app.command()
def wait(
    deploy_id: Annotated[str, typer.Argument(metavar="ID", help="Deploy id, e.g. dpl_3f9c….")],
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Wait until the deployment's Airflow has parsed a deploy; exit 1 on import errors.

    Progress goes to stderr; every import error is printed with its file and traceback.
    """
    started = waiting.now()
    with client(url, token) as api:
        result = waiting.follow(api, deploy_id, timeout, json, started)
    if json:
        status = result.status
        print_json(
            {
                "deploy_id": status["deploy_id"],
                "seq": status["seq"],
                "deployment": status["deployment"],
                "dags_version": status["dags_version"],
                **result.to_dict(),
            }
        )
    code = waiting.report(result, timeout)
    if code:
        raise typer.Exit(code)


_REF_HELP = "NAME (its current deploy), NAME:SEQ or a deploy id (dpl_…)."


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
    if json:
        print_json(result)
        return
    before, after = result["from"], result["to"]
    out.print(f"From {_label(before)} to {_label(after)}:")
    render_diff(result)


def _label(deploy: dict[str, Any]) -> str:
    return f"{deploy['deployment']} deploy #{deploy['seq']} ({deploy['id']})"


def render_diff(result: dict[str, Any]) -> None:
    """Each tree's added, removed and changed files; "no changes" for an identical tree."""
    for key, label in _TREES:
        tree = result[key]
        changes = [("+", "green", p) for p in tree["added"]]
        changes += [("-", "red", p) for p in tree["removed"]]
        changes += [("~", "yellow", p) for p in tree["changed"]]
        if not changes:
            out.print(f"{label}: no changes")
            continue
        out.print(
            f"{label}: {len(tree['added'])} added, {len(tree['removed'])} removed, "
            f"{len(tree['changed'])} changed"
        )
        for sign, color, path in sorted(changes, key=lambda change: change[2]):
            out.print(f"  [{color}]{sign} {escape(path)}[/{color}]")


def checks_summary(deploy: dict[str, Any]) -> str:
    """``parse passed, pytest not-run``: what the client checked before the deploy."""
    checks = deploy.get("checks") or {}
    return ", ".join(f"{name} {checks.get(name, 'not-run')}" for name in ("parse", "pytest"))


def render_deploy(deploy: dict[str, Any]) -> None:
    rows = [
        ("Deploy", f"#{deploy['seq']} {deploy['id']}"),
        ("Deployment", deploy["deployment"]),
        ("Kind", deploy["kind"]),
        ("Origin", origin(deploy)),
        ("Created", when(deploy.get("created_at"))),
        (
            "DAG version",
            f"{deploy['dags_version']} ({plural(deploy.get('dags_files') or 0, 'file')})",
        ),
        (
            "Project version",
            f"{deploy['project_version']} ({plural(deploy.get('project_files') or 0, 'file')})",
        ),
        (
            "Uploaded",
            f"{plural(deploy.get('uploaded_files') or 0, 'file')}, "
            f"{human_bytes(deploy.get('uploaded_bytes') or 0)}",
        ),
        ("Token", deploy.get("token_id") or "-"),
        ("Git commit", deploy.get("git_sha") or "-"),
        ("Git branch", deploy.get("git_branch") or "-"),
        ("Git author", deploy.get("git_author") or "-"),
        ("Git message", (deploy.get("git_message") or "-").splitlines()[0]),
        ("Description", deploy.get("description") or "-"),
        ("Checks", checks_summary(deploy)),
    ]
    if deploy.get("source_deployment"):
        rows.append(
            (
                "Promoted from",
                f"{deploy['source_deployment']} deploy #{deploy['source_seq']} "
                f"({deploy['source_deploy_id']})",
            )
        )
    elif deploy.get("source_deploy_id"):
        rows.append(("Copied from", deploy["source_deploy_id"]))
    table = Table.grid(padding=(0, 2))
    for label, value in rows:
        table.add_row(f"[bold]{label}[/bold]", escape(str(value)))
    out.print(table)


def origin(deploy: dict[str, Any]) -> str:
    """The origin, with the source of a promotion: ``promote from dev#5``."""
    if deploy.get("source_deployment"):
        return f"{deploy['origin']} from {deploy['source_deployment']}#{deploy['source_seq']}"
    return str(deploy["origin"])
