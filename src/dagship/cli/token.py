"""``dagship token``: create, list and revoke API tokens."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, out, print_json, when

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


class Role(StrEnum):
    viewer = "viewer"
    dag_author = "dag-author"
    operator = "operator"
    admin = "admin"


def _duration(value: str | None) -> int | None:
    if value is None:
        return None
    from dagship.core.durations import parse_duration

    try:
        return math.ceil(parse_duration(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--expires-in'") from exc


@app.command()
def create(
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="viewer reads; dag-author deploys DAGs; operator deploys the project and rolls "
            "back; admin manages deployments and tokens.",
            show_default=False,
        ),
    ],
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", help="Bind the token to this deployment only."),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option(
            "--expires-in",
            help="Lifetime such as 90m, 12h, 30d or 2w. Default: never expires.",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the token is for, e.g. 'GitHub CI'.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a token and print its secret once (needs an admin token)."""
    seconds = _duration(expires_in)
    with client(url, token) as api:
        created = api.create_token(role.value, deployment, seconds, description)
    if json:
        print_json(created)
        return
    scope = (
        f"deployment {created['deployment']}" if created.get("deployment") else "all deployments"
    )
    expires = when(created.get("expires_at")) if created.get("expires_at") else "never"
    out.print(f"Created token {created['id']}: role {created['role']}, {scope}, expires {expires}.")
    out.print(f"Token: {created['token']}")
    out.print("Store it now: it is not shown again. Use it as DAGSHIP_API_TOKEN.")


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List tokens (never their secrets)."""
    with client(url, token) as api:
        tokens = api.list_tokens()
    if json:
        print_json(tokens)
        return
    if not tokens:
        out.print("No tokens.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("ID", "ROLE", "DEPLOYMENT", "STATE", "CREATED", "EXPIRES", "LAST USED"):
        table.add_column(column)
    table.add_column("DESCRIPTION")
    for item in tokens:
        table.add_row(
            item["id"],
            item["role"],
            item.get("deployment") or "(all)",
            _state(item),
            when(item.get("created_at")),
            when(item.get("expires_at")) if item.get("expires_at") else "never",
            when(item.get("last_used_at")),
            escape(item.get("description") or ""),
        )
    out.print(table)


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id, e.g. tok_1a2b3c4d5e6f.")],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a token: it stops working at once (revoking twice is fine)."""
    with client(url, token) as api:
        revoked = api.revoke_token(token_id)
    if json:
        print_json(revoked)
        return
    out.print(f"Revoked token {revoked['id']} at {when(revoked.get('revoked_at'))}.")


def _state(item: dict[str, Any]) -> str:
    if item.get("revoked_at"):
        return "revoked"
    expires = item.get("expires_at")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= datetime.now(UTC):
        return "expired"
    return "active"
