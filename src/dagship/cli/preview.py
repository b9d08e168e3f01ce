"""``dagship preview``: preview deployments of branches, for pull requests."""

from __future__ import annotations

from pathlib import Path
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
    err,
    fail,
    out,
    print_json,
    short,
    when,
)
from dagship.cli.deploy import LocalOption, ParseOption, PytestOption, checker, render_blocked
from dagship.cli.deploy import render as render_deploy
from dagship.cli.progress import UploadBar
from dagship.cli.waiting import TimeoutOption
from dagship.core.vocabulary import Mode
from dagship.validate.gate import CheckPlan, DeployBlocked

app = typer.Typer(
    help="Preview deployments: one per branch, made from another deployment.",
    no_args_is_help=True,
)

BranchOption = Annotated[
    str,
    typer.Option(
        "--name",
        help="The branch, as it is (e.g. feature/ABC-12); the preview is named after it.",
        show_default=False,
    ),
]


@app.command("name")
def name_command(
    branch: Annotated[str, typer.Argument(metavar="BRANCH", help="Branch name.")],
    json: JsonOption = False,
) -> None:
    """Print the deployment name of a branch's preview (no server needed)."""
    from dagship.flows.preview import name_of

    name = name_of(branch)
    if json:
        print_json({"name": name, "branch": branch})
        return
    out.print(name)


@app.command()
def create(
    source: Annotated[
        str,
        typer.Option("--from", help="Deployment to copy, e.g. dev.", show_default=False),
    ] = ...,  # type: ignore[assignment]
    branch: BranchOption = ...,  # type: ignore[assignment]
    airflow_url: Annotated[
        str | None,
        typer.Option(
            "--airflow-url",
            help="The preview's own Airflow (API server base URL). Default: none; the source's "
            "Airflow is never shared.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create the preview of a branch with the settings and current versions of --from.

    Safe to run on every push: when the preview exists, nothing changes (exit 0).
    """
    with client(url, token) as api:
        result = api.create_preview(source, branch, airflow_url)
    if json:
        print_json(result)
        return
    preview, deploy = result["preview"], result["deploy"]
    name = preview["name"]
    if not result["created"]:
        out.print(
            f"Preview {name} of branch {escape(branch)} already exists (from {preview['source']}); "
            "nothing changed."
        )
        return
    if deploy is None:
        out.print(
            f"Created preview {name} of branch {escape(branch)} from {source}, which has no "
            f"deploys yet: deploy with `dagship preview deploy --name '{escape(branch)}'`."
        )
        return
    out.print(
        f"Created preview {name} of branch {escape(branch)} from {source} deploy "
        f"#{deploy['source_seq']}: deploy #{deploy['seq']} ({deploy['id']}), nothing uploaded."
    )


@app.command()
def deploy(
    path: Annotated[
        Path,
        typer.Argument(help="The project folder (the one holding dags/). Default: here."),
    ] = Path("."),
    branch: BranchOption = ...,  # type: ignore[assignment]
    dags: Annotated[bool, typer.Option("--dags", help="Deploy only the DAG bundle.")] = False,
    project: Annotated[
        bool, typer.Option("--project", help="Deploy only the project (everything but dags/).")
    ] = False,
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
            help="Then wait until the preview's Airflow has parsed the new version; exit 1 "
            "printing each import error.",
        ),
    ] = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a project to a branch's preview, exactly like `dagship deploy` to it."""
    if dags and project:
        raise fail("--dags and --project cannot be used together: pass one, or neither", 2)
    from dagship.flows.preview import deploy_preview, name_of

    started = waiting.now()
    mode = Mode.DAGS if dags else Mode.PROJECT if project else Mode.AUTO
    plan = CheckPlan(parse=parse, pytest=pytest, local=local)
    with client(url, token) as api, UploadBar(enabled=not json) as bar:
        try:
            result = deploy_preview(
                api, branch, path, mode, description, bar, checker(path, plan, json)
            )
        except DeployBlocked as exc:
            render_blocked(exc, name_of(branch), json)
            raise
        if not json:
            render_deploy(result)
        if not wait:
            if json:
                print_json(result.to_dict())
            return
        if not json:
            err.print(f"Uploaded: deploy #{result.seq} ({result.id}).")
        waited = waiting.follow(api, result.id, timeout, json, started)
    waiting.finish(result.to_dict(), waited, timeout, json)


@app.command()
def delete(
    branch: BranchOption = ...,  # type: ignore[assignment]
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete a branch's preview and its history; a preview that does not exist is fine."""
    from dagship.flows.preview import delete_preview

    with client(url, token) as api:
        result = delete_preview(api, branch)
    if json:
        print_json(result)
        return
    if result["deleted"]:
        out.print(f"Deleted preview {result['name']} of branch {escape(branch)}.")
    else:
        out.print(
            f"There is no preview {result['name']} for branch {escape(branch)}; nothing to delete."
        )


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List previews: name, source, branch, created, last activity."""
    with client(url, token) as api:
        previews = api.list_previews()
    if json:
        print_json(previews)
        return
    if not previews:
        out.print(
            "No previews: create one with `dagship preview create --from DEPLOYMENT --name BRANCH`."
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "SOURCE", "BRANCH", "CREATED", "LAST ACTIVITY", "DEPLOY", "DAGS"):
        table.add_column(column)
    for item in previews:
        current = item.get("current")
        table.add_row(
            item["name"],
            item["source"],
            escape(item["branch"]),
            when(item["created_at"]),
            when(item["last_activity_at"]),
            f"#{current['seq']}" if current else "-",
            short(current["dags_version"], 8) if current else "-",
        )
    out.print(table)


@app.command()
def cleanup(
    idle: Annotated[
        str | None,
        typer.Option(
            "--idle",
            help="Delete previews with no deploy for this long (90s, 12h, 7d). Default: the "
            "server's DAGSHIP_PREVIEW_IDLE_TIMEOUT.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete previews idle for longer than --idle (operator token)."""
    from dagship.core.durations import parse_duration

    try:
        seconds = parse_duration(idle) if idle is not None else None
    except ValueError as exc:
        raise fail(f"--idle: {exc}", 2) from None
    with client(url, token) as api:
        result = api.cleanup_previews(seconds)
    if json:
        print_json(result)
        return
    deleted: list[dict[str, Any]] = result["deleted"]
    limit = f"{result['idle_seconds']:g}s"
    if not deleted:
        out.print(f"No preview has been idle for more than {limit}; nothing deleted.")
        return
    out.print(f"Deleted {len(deleted)} preview(s) idle for more than {limit}:")
    for item in deleted:
        out.print(
            f"  {item['name']} (branch {escape(item['branch'])}, last activity "
            f"{when(item['last_activity_at'])})"
        )
