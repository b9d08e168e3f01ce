"""Options and rendering helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from dagship.client.api import ApiClient
    from dagship.core.schemas import DeployOut

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="dagship server URL. Default: $DAGSHIP_URL, else http://127.0.0.1:8787.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help=(
            "API token. Default: $DAGSHIP_API_TOKEN; for a server on this machine, "
            "the admin token a local server wrote to $DAGSHIP_HOME/admin-token "
            "(DAGSHIP_HOME defaults to ~/.dagship)."
        ),
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout, for scripts.")
]
EnvFileOption = Annotated[
    Path | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment variables for the DAG files and tests, one KEY=VALUE per line. "
        "Default: the project's .env, if there. Variables already set here win.",
        show_default=False,
        dir_okay=False,
    ),
]

# Text is printed as it is: names, paths, descriptions, server answers and Airflow's
# tracebacks hold brackets and colons that Rich would otherwise read as markup ("[/tmp/x]")
# or emoji codes (":warning:"). Styles are given as styles, never as markup.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
if not out.is_terminal:
    # Piped output is not cut to 80 columns: tables stay one line per row.
    out.width = 200
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def client(url: str | None, token: str | None) -> ApiClient:
    # httpx is imported on first use: --help and usage errors stay fast.
    from dagship.client.api import ApiClient
    from dagship.client.settings import resolve_settings

    settings = resolve_settings(url, token)
    return ApiClient(settings.url, settings.token)


def show(document: object, human: Callable[[], object], json: bool) -> None:
    """Print a command's result: with ``--json``, ``document`` as one JSON document (API
    models as the API writes them); else what ``human()`` prints for people."""
    if json:
        print_json(document)
    else:
        human()


def print_grid(rows: list[tuple[str, str]]) -> None:
    """Label-value lines, as `deployment inspect` prints them: labels in bold."""
    table = Table.grid(padding=(0, 2))
    for label, value in rows:
        table.add_row(Text(label, style="bold"), value)
    out.print(table)


def print_json(data: object) -> None:
    # Imported here: commands that print no model need no Pydantic.
    from pydantic_core import to_jsonable_python

    document = to_jsonable_python(data, by_alias=True)
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``Error: message`` on stderr and return the Exit to raise."""
    sys.stderr.write(f"Error: {message}\n")
    return typer.Exit(code)


def short(version: str | None, length: int = 12) -> str:
    """``sha256-`` plus the first hex digits: enough to tell versions apart."""
    if not version:
        return "-"
    prefix, _, digest = version.partition("-")
    return f"{prefix}-{digest[:length]}" if digest else version[:length]


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def when(moment: datetime | None) -> str:
    """A time of the API (UTC) as ``2026-11-26 04:30:00 UTC``, or ``-``."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def commit_label(sha: str | None, dirty: bool | None) -> str:
    """A git commit, ``(dirty)`` when the files deployed differed from it; ``-`` for none."""
    if not sha:
        return "-"
    return f"{sha} (dirty)" if dirty else sha


def git_summary(deploy: DeployOut) -> str:
    """``1a2b3c4d (main, dirty)``: the short commit, its branch, and whether it was dirty."""
    if not deploy.git_sha:
        return "-"
    notes = [note for note in (deploy.git_branch, "dirty" if deploy.git_dirty else None) if note]
    sha = deploy.git_sha[:8]
    return f"{sha} ({', '.join(notes)})" if notes else sha
