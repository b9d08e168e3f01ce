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

AirflowUrlOption = Annotated[
    str | None,
    typer.Option(
        "--airflow-url",
        help="Base URL of the deployment's Airflow API server (e.g. http://airflow:8080); "
        "`deploy --wait` follows deploys there. Credentials come from the server's settings.",
        show_default=False,
    ),
]
AirflowBundleOption = Annotated[
    str | None,
    typer.Option(
        "--airflow-bundle",
        help="Name of the dagship DAG bundle in that Airflow. Default: dagship-NAME.",
        show_default=False,
    ),
]


@app.command()
def create(
    name: NameArg,
    description: DescriptionOption = None,
    dag_deploys: DagDeploysOption = None,
    airflow_url: AirflowUrlOption = None,
    airflow_bundle: AirflowBundleOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a deployment (needs an admin token)."""
    with client(url, token) as api:
        deployment = api.create_deployment(
            name, description, dag_deploys, airflow_url, airflow_bundle
        )
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
    airflow_url: AirflowUrlOption = None,
    no_airflow_url: Annotated[
        bool, typer.Option("--no-airflow-url", help="Forget the deployment's Airflow URL.")
    ] = False,
    airflow_bundle: AirflowBundleOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Change a deployment's description, DAG-only deploys or Airflow (URL and bundle name)."""
    if airflow_url is not None and no_airflow_url:
        raise fail("--airflow-url and --no-airflow-url cannot be used together", 2)
    if no_airflow_url:
        airflow_url = ""
    if description is None and dag_deploys is None and airflow_url is None and not airflow_bundle:
        raise fail(
            "nothing to change: pass --description TEXT, --dag-deploys/--no-dag-deploys, "
            "--airflow-url URL/--no-airflow-url or --airflow-bundle NAME",
            2,
        )
    with client(url, token) as api:
        deployment = api.update_deployment(
            name, description, dag_deploys, airflow_url, airflow_bundle
        )
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
        ("Airflow", escape(_airflow(deployment))),
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


def _airflow(deployment: dict[str, Any]) -> str:
    if not deployment.get("airflow_url"):
        return "- (set one with --airflow-url to follow deploys in Airflow)"
    return f"{deployment['airflow_url']} (bundle {deployment.get('airflow_bundle')})"


def _dag_deploys(deployment: dict[str, Any]) -> str:
    return "DAG deploys " + ("enabled" if deployment.get("dag_deploys") else "disabled")


def _files(deploy: dict[str, Any], key: str) -> str:
    return plural(int(deploy.get(key) or 0), "file")
