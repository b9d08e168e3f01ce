"""``dagship preview``: preview deployments of branches, for pull requests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dagship.cli import waiting
from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    fail,
    out,
    short,
    show,
    when,
)
from dagship.cli.deploy import blocked_report, checker, deploy_mode
from dagship.cli.deploy import render as render_deploy
from dagship.cli.options import (
    DagsOption,
    DeployDescriptionOption,
    LocalOption,
    ParseOption,
    ProjectOnlyOption,
    ProjectPathArg,
    PytestOption,
    TimeoutOption,
    WaitOption,
)
from dagship.cli.progress import UploadBar
from dagship.validate.gate import CheckPlan

if TYPE_CHECKING:
    from dagship.core.schemas import CleanupOut, PreviewCreated, PreviewDeleted, PreviewOut

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
    show({"name": name, "branch": branch}, lambda: out.print(name), json)


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
            help="The preview's own Airflow (API server base URL); needs an admin token. "
            "Default: the server's DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE, else the source's.",
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
    show(result, lambda: _render_created(result, source), json)


def _render_created(result: PreviewCreated, source: str) -> None:
    preview, deploy = result.preview, result.deploy
    name, branch = preview.name, preview.branch
    if not result.created:
        out.print(
            f"Preview {name} of branch {branch} already exists (from {preview.source}); "
            "nothing changed."
        )
    elif deploy is None:
        out.print(
            f"Created preview {name} of branch {branch} from {source}, which has no deploys "
            f"yet: deploy with `dagship preview deploy --name '{branch}'`."
        )
    else:
        out.print(
            f"Created preview {name} of branch {branch} from {source} deploy "
            f"#{deploy.source_seq}: deploy #{deploy.seq} ({deploy.id}), nothing uploaded."
        )


@app.command()
def deploy(
    path: ProjectPathArg = Path("."),
    branch: BranchOption = ...,  # type: ignore[assignment]
    dags: DagsOption = False,
    project: ProjectOnlyOption = False,
    description: DeployDescriptionOption = None,
    parse: ParseOption = None,
    pytest: PytestOption = False,
    local: LocalOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy a project to a branch's preview, exactly like `dagship deploy` to it."""
    mode = deploy_mode(dags, project)
    from dagship.flows.preview import deploy_preview, name_of

    started = waiting.now()
    check = checker(path, CheckPlan(parse=parse, pytest=pytest, local=local), json)
    with client(url, token) as api, UploadBar(enabled=not json) as bar:
        with blocked_report(name_of(branch), json):
            result = deploy_preview(api, branch, path, mode, description, bar, check)
        waiting.conclude(
            api,
            result.to_dict(),
            result.deploy,
            lambda: render_deploy(result),
            wait=wait,
            timeout=timeout,
            json=json,
            started=started,
        )


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
    show(result, lambda: _render_deleted(result, branch), json)


def _render_deleted(result: PreviewDeleted, branch: str) -> None:
    if result.deleted:
        out.print(f"Deleted preview {result.name} of branch {branch}.")
    else:
        out.print(f"There is no preview {result.name} for branch {branch}; nothing to delete.")


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List previews: name, source, branch, created, last activity."""
    with client(url, token) as api:
        previews = api.list_previews()
    show(previews, lambda: _render_list(previews), json)


def _render_list(previews: list[PreviewOut]) -> None:
    if not previews:
        out.print(
            "No previews: create one with `dagship preview create --from DEPLOYMENT --name BRANCH`."
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "SOURCE", "BRANCH", "CREATED", "LAST ACTIVITY", "DEPLOY", "DAGS"):
        table.add_column(column)
    for item in previews:
        current = item.current
        table.add_row(
            item.name,
            item.source,
            item.branch,
            when(item.created_at),
            when(item.last_activity_at),
            f"#{current.seq}" if current else "-",
            short(current.dags_version, 8) if current else "-",
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
    show(result, lambda: _render_cleanup(result), json)


def _render_cleanup(result: CleanupOut) -> None:
    from dagship.core.durations import format_duration

    limit = format_duration(result.idle_seconds)
    if not result.deleted:
        out.print(f"No preview has been idle for more than {limit}; nothing deleted.")
        return
    out.print(f"Deleted {len(result.deleted)} preview(s) idle for more than {limit}:")
    for item in result.deleted:
        out.print(
            f"  {item.name} (branch {item.branch}, last activity {when(item.last_activity_at)})"
        )
