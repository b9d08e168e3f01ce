"""``dagship server``: run the API server in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer


def server(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to listen on. Default: 127.0.0.1.", show_default=False),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on. Default: 8787.", show_default=False)
    ] = None,
) -> None:
    """Run the dagship server (reads DAGSHIP_HOME, DAGSHIP_DATABASE_URL, DAGSHIP_STORAGE_URL)."""
    # Imported here so that other commands never pay for FastAPI and SQLAlchemy.
    from dagship.server.run import run_server

    code = run_server(host, port)
    if code:
        raise typer.Exit(code)
