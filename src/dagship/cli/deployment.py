"""``dagship deployment``: create, change, list, inspect and delete deployments."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
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
    print_grid,
    short,
    show,
    when,
)

if TYPE_CHECKING:
    from dagship.core.schemas import AgentOut, AirflowCredentials, DeploymentOut

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
        "`deploy --wait` follows deploys there. Needs an admin token not bound to a "
        "deployment.",
        show_default=False,
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--airflow-token-file",
        help="File holding a bearer token for that Airflow's REST API (- reads stdin). Stored "
        "encrypted, never shown. Default: the server's DAGSHIP_AIRFLOW_* settings.",
        show_default=False,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option(
        "--airflow-username",
        help="Or a user of that Airflow, logged in at its /auth/token.",
        show_default=False,
    ),
]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--airflow-password-file",
        help="File holding that user's password (- reads stdin).",
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
    airflow_token_file: TokenFileOption = None,
    airflow_username: UsernameOption = None,
    airflow_password_file: PasswordFileOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a deployment (needs an admin token)."""
    credentials = _credentials(airflow_token_file, airflow_username, airflow_password_file)
    with client(url, token) as api:
        deployment = api.create_deployment(
            name, description, dag_deploys, airflow_url, airflow_bundle, credentials
        )
    show(deployment, lambda: _created(deployment), json)


def _created(deployment: DeploymentOut) -> None:
    out.print(f"Created deployment {deployment.name} ({_dag_deploys(deployment)}).")
    out.print(f"Deploy to it with: dagship deploy --deployment {deployment.name}")


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
    airflow_token_file: TokenFileOption = None,
    airflow_username: UsernameOption = None,
    airflow_password_file: PasswordFileOption = None,
    no_airflow_credentials: Annotated[
        bool,
        typer.Option("--no-airflow-credentials", help="Forget the deployment's credentials."),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Change a deployment's description, DAG-only deploys or Airflow (URL, bundle name,
    credentials)."""
    if airflow_url is not None and no_airflow_url:
        raise fail("--airflow-url and --no-airflow-url cannot be used together", 2)
    if no_airflow_url:
        airflow_url = ""
    credentials: AirflowCredentials | Literal[""] | None = _credentials(
        airflow_token_file, airflow_username, airflow_password_file
    )
    if no_airflow_credentials:
        if credentials is not None:
            raise fail("--no-airflow-credentials cannot be used with new credentials", 2)
        credentials = ""
    changes = (description, dag_deploys, airflow_url, airflow_bundle or None, credentials)
    if all(change is None for change in changes):
        raise fail(
            "nothing to change: pass --description TEXT, --dag-deploys/--no-dag-deploys, "
            "--airflow-url URL/--no-airflow-url, --airflow-bundle NAME, or credentials "
            "(--airflow-token-file FILE, --airflow-username NAME, --no-airflow-credentials)",
            2,
        )
    with client(url, token) as api:
        deployment = api.update_deployment(
            name, description, dag_deploys, airflow_url, airflow_bundle, credentials
        )
    show(
        deployment,
        lambda: out.print(f"Updated deployment {deployment.name} ({_dag_deploys(deployment)})."),
        json,
    )


def _credentials(
    token_file: Path | None, username: str | None, password_file: Path | None
) -> AirflowCredentials | None:
    """The Airflow credentials the options give (None: none given)."""
    from dagship.core.schemas import AirflowCredentials

    if token_file is not None and (username is not None or password_file is not None):
        raise fail("give --airflow-token-file, or --airflow-username and its password", 2)
    if password_file is not None and username is None:
        raise fail("--airflow-password-file needs --airflow-username", 2)
    if token_file is not None:
        return AirflowCredentials(token=_secret(token_file, "--airflow-token-file"))
    if username is not None:
        password = _secret(password_file, "--airflow-password-file") if password_file else ""
        return AirflowCredentials(username=username, password=password)
    return None


def _secret(path: Path, option: str) -> str:
    """The first line of ``path`` (``-``: stdin), which must not be empty."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise fail(f"{option}: cannot read {path}: {exc}", 2) from None
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise fail(f"{option}: {path} is empty", 2)
    return lines[0].strip()


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List deployments with their current deploy."""
    with client(url, token) as api:
        deployments = api.list_deployments()
    show(deployments, lambda: _render_list(deployments), json)


def _render_list(deployments: list[DeploymentOut]) -> None:
    if not deployments:
        out.print("No deployments yet: create one with `dagship deployment create NAME`.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "DAG DEPLOYS", "CURRENT", "KIND", "DEPLOYED AT", "DESCRIPTION"):
        table.add_column(column)
    for item in deployments:
        current = item.current
        table.add_row(
            item.name,
            "on" if item.dag_deploys else "off",
            f"#{current.seq}" if current else "-",
            current.kind if current else "-",
            when(current.created_at if current else None),
            item.description,
        )
    out.print(table)


@app.command()
def inspect(
    name: NameArg, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Show a deployment, its current deploy and its agents."""
    with client(url, token) as api:
        deployment = api.get_deployment(name)
    show(deployment, lambda: render_deployment(deployment), json)


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
    show({"name": name, "deleted": True}, lambda: out.print(f"Deleted deployment {name}."), json)


def render_deployment(deployment: DeploymentOut) -> None:
    current = deployment.current
    rows = [
        ("Deployment", deployment.name),
        ("Description", deployment.description or "-"),
        ("DAG deploys", "enabled" if deployment.dag_deploys else "disabled"),
        ("Airflow", _airflow(deployment)),
        ("Created", when(deployment.created_at)),
    ]
    if deployment.airflow_url:
        rows.insert(4, ("Airflow credentials", _airflow_credentials(deployment)))
    if current:
        rows += [
            ("Current deploy", f"#{current.seq} {current.id} ({current.kind})"),
            ("Deployed at", when(current.created_at)),
            ("DAG version", f"{current.dags_version} ({plural(current.dags_files, 'file')})"),
            (
                "Project version",
                f"{current.project_version} ({plural(current.project_files, 'file')})",
            ),
            ("Git", git_summary(current)),
        ]
    else:
        rows.append(("Current deploy", "none yet"))
    rows.append(("Agents", _agents(deployment)))
    print_grid(rows)
    if deployment.agents:
        _render_agents(deployment.agents)


def _agents(deployment: DeploymentOut) -> str:
    agents = deployment.agents
    if not agents:
        return (
            "none has reported (start one on each Airflow host with "
            f"`dagship agent run --deployment {deployment.name}`)"
        )
    active = sum(agent.active for agent in agents)
    return f"{len(agents)} ({active} reported in the last minute)"


def _render_agents(agents: list[AgentOut]) -> None:
    table = Table(box=None, header_style="bold")
    columns = ("HOST", "COMPONENTS", "STATE", "PROJECT VERSION", "LAST SEEN", "ERROR")
    for column in columns:
        table.add_column(column)
    for agent in agents:
        state = str(agent.state)
        if agent.target_version and agent.target_version != agent.project_version:
            state += f" {short(agent.target_version)}"
        table.add_row(
            agent.host,
            ", ".join(agent.components),
            state,
            short(agent.project_version),
            when(agent.last_seen_at) + ("" if agent.active else " (silent)"),
            agent.error_line or "-",
        )
    out.print()
    out.print(table)


_URL_FROM = {
    "admin": "set by an admin",
    "source": "its source's",
    "template": "from the server's preview URL template",
    "unconfirmed": "not contacted until an admin sets it again",
}


def _airflow(deployment: DeploymentOut) -> str:
    if not deployment.airflow_url:
        return "- (set one with --airflow-url to follow deploys in Airflow)"
    origin = _URL_FROM.get(str(deployment.airflow_url_from), "")
    return f"{deployment.airflow_url} (bundle {deployment.airflow_bundle}; {origin})"


def _airflow_credentials(deployment: DeploymentOut) -> str:
    if deployment.airflow_credentials_set:
        return "set (never shown)"
    fallback = "the server's DAGSHIP_AIRFLOW_* settings, if any"
    if deployment.airflow_url_from in ("source", "template"):
        fallback = f"those of {deployment.preview_source}, else {fallback}"
    return f"not set: the server uses {fallback}"


def _dag_deploys(deployment: DeploymentOut) -> str:
    return "DAG deploys " + ("enabled" if deployment.dag_deploys else "disabled")
