"""``dagship token``: create, list and revoke API tokens."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, out, show, when
from dagship.core.vocabulary import Role

if TYPE_CHECKING:
    from dagship.core.schemas import TokenCreated, TokenOut

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


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
        created = api.create_token(role, deployment, seconds, description)
    show(created, lambda: _render_created(created), json)


def _render_created(created: TokenCreated) -> None:
    scope = f"deployment {created.deployment}" if created.deployment else "all deployments"
    expires = when(created.expires_at) if created.expires_at else "never"
    out.print(f"Created token {created.id}: role {created.role}, {scope}, expires {expires}.")
    out.print(f"Token: {created.token}")
    out.print("Store it now: it is not shown again. Use it as DAGSHIP_API_TOKEN.")


@app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List tokens (never their secrets)."""
    with client(url, token) as api:
        tokens = api.list_tokens()
    show(tokens, lambda: _render_list(tokens), json)


def _render_list(tokens: list[TokenOut]) -> None:
    if not tokens:
        out.print("No tokens.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("ID", "ROLE", "DEPLOYMENT", "STATE", "CREATED", "EXPIRES", "LAST USED"):
        table.add_column(column)
    table.add_column("DESCRIPTION")
    for item in tokens:
        table.add_row(
            item.id,
            item.role,
            item.deployment or "(all)",
            _state(item),
            when(item.created_at),
            when(item.expires_at) if item.expires_at else "never",
            when(item.last_used_at),
            item.description,
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
    show(
        revoked,
        lambda: out.print(f"Revoked token {revoked.id} at {when(revoked.revoked_at)}."),
        json,
    )


def _state(item: TokenOut) -> str:
    if item.revoked_at:
        return "revoked"
    if item.expires_at and item.expires_at <= datetime.now(UTC):
        return "expired"
    return "active"
