"""``dagship deployment``: create, change, list, inspect and delete deployments."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    fail,
    git_summary,
    out,
    plural,
    print_json,
    when,
)

app = typer.Typer(help="Create, change, list and delete deployments.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Deployment name, e.g. prod.", show_default=False)]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="What the deployment is for.")
]
DagDeploysOption = Annotated[
    bool | None,
    typer.Option(
        "--dag-deploys/--no-dag-deploys",
        help="Allow DAG-only deploys (default on). When off, every deploy carries the project.",
        show_default=False,
    ),
]


@app.command()
def create(
    name: NameArg,
    description: DescriptionOption = None,
    dag_deploys: DagDeploysOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a deployment (needs an admin token)."""
    with client(url, token) as api:
        deployment = api.create_deployment(name, description, dag_deploys)
    if json:
        print_json(deployment)
        return
    out.print(f"Created deployment {deployment['name']} ({_dag_deploys(deployment)}).")
    out.print(f"Deploy to it with: dagship deploy --deployment {deployment['name']}")


@app.command()
def update(
    name: NameArg,
    description: DescriptionOption = None,
    dag_deploys: DagDeploysOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Change a deployment's description or whether it takes DAG-only deploys."""
    if description is None and dag_deploys is None:
        raise fail(
            "nothing to change: pass --description TEXT and/or --dag-deploys/--no-dag-deploys",
            2,
        )
    with client(url, token) as api:
        deployment = api.update_deployment(name, description, dag_deploys)
    if json:
        print_json(deployment)
        return
    out.print(f"Updated deployment {deployment['name']} ({_dag_deploys(deployment)}).")


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List deployments with their current deploy."""
    with client(url, token) as api:
        deployments = api.list_deployments()
    if json:
        print_json(deployments)
        return
    if not deployments:
        out.print("No deployments yet: create one with `dagship deployment create NAME`.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "DAG DEPLOYS", "CURRENT", "KIND", "DEPLOYED AT", "DESCRIPTION"):
        table.add_column(column)
    for item in deployments:
        current = item.get("current") or {}
        table.add_row(
            item["name"],
            "on" if item.get("dag_deploys") else "off",
            f"#{current['seq']}" if current else "-",
            current.get("kind", "-"),
            when(current.get("created_at")),
            escape(item.get("description") or ""),
        )
    out.print(table)


@app.command()
def inspect(
    name: NameArg, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Show a deployment and its current deploy."""
    with client(url, token) as api:
        deployment = api.get_deployment(name)
    if json:
        print_json(deployment)
        return
    render_deployment(deployment)


@app.command()
def delete(
    name: NameArg,
    force: Annotated[
        bool, typer.Option("--force", help="Really delete it, with its deploy history.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete a deployment, its deploy history and the tokens bound to it."""
    if not force:
        raise fail(
            f"deleting deployment {name} deletes its deploy history and revokes the tokens "
            "bound to it; pass --force to do it"
        )
    with client(url, token) as api:
        api.delete_deployment(name)
    if json:
        print_json({"name": name, "deleted": True})
        return
    out.print(f"Deleted deployment {name}.")


def render_deployment(deployment: dict[str, Any]) -> None:
    current = deployment.get("current")
    rows = [
        ("Deployment", deployment["name"]),
        ("Description", escape(deployment.get("description") or "-")),
        ("DAG deploys", "enabled" if deployment.get("dag_deploys") else "disabled"),
        ("Created", when(deployment.get("created_at"))),
    ]
    if current:
        rows += [
            ("Current deploy", f"#{current['seq']} {current['id']} ({current['kind']})"),
            ("Deployed at", when(current.get("created_at"))),
            ("DAG version", f"{current['dags_version']} ({_files(current, 'dags_files')})"),
            (
                "Project version",
                f"{current['project_version']} ({_files(current, 'project_files')})",
            ),
            ("Git", escape(git_summary(current))),
        ]
    else:
        rows.append(("Current deploy", "none yet"))
    table = Table.grid(padding=(0, 2))
    for label, value in rows:
        table.add_row(f"[bold]{label}[/bold]", value)
    out.print(table)


def _dag_deploys(deployment: dict[str, Any]) -> str:
    return "DAG deploys " + ("enabled" if deployment.get("dag_deploys") else "disabled")


def _files(deploy: dict[str, Any], key: str) -> str:
    return plural(int(deploy.get(key) or 0), "file")
