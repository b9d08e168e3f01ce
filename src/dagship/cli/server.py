"""``dagship server``: run the API server in the foreground (``dagship server`` or
``dagship server run``), and look after its blob store (``scrub``, ``gc``).

The store commands read the same settings as the server (DAGSHIP_HOME, DAGSHIP_DATABASE_URL,
DAGSHIP_STORAGE_URL) and are safe while it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli.common import JsonOption, err, fail, human_bytes, out, show

if TYPE_CHECKING:
    from dagship.server.services.gc import GcReport
    from dagship.server.services.scrub import ScrubReport

app = typer.Typer(
    help="Run the dagship server (reads DAGSHIP_HOME, DAGSHIP_DATABASE_URL, "
    "DAGSHIP_STORAGE_URL), or look after its blob store.",
    invoke_without_command=True,
    no_args_is_help=False,
)

HostOption = Annotated[
    str | None,
    typer.Option(help="Interface to listen on. Default: 127.0.0.1.", show_default=False),
]
PortOption = Annotated[
    int | None, typer.Option(help="Port to listen on. Default: 8787.", show_default=False)
]
CertOption = Annotated[
    Path | None,
    typer.Option(
        "--ssl-certfile",
        help="Serve HTTPS with this PEM certificate (and chain); needs --ssl-keyfile. "
        "Or leave TLS to a reverse proxy (docs/server.md).",
        show_default=False,
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--ssl-keyfile", help="The certificate's private key (PEM).", show_default=False),
]


@app.callback()
def server(
    ctx: typer.Context,
    host: HostOption = None,
    port: PortOption = None,
    ssl_certfile: CertOption = None,
    ssl_keyfile: KeyOption = None,
) -> None:
    """Run the dagship server (reads DAGSHIP_HOME, DAGSHIP_DATABASE_URL, DAGSHIP_STORAGE_URL)."""
    if ctx.invoked_subcommand is None:
        _serve(host, port, ssl_certfile, ssl_keyfile)


@app.command("run")
def run(
    host: HostOption = None,
    port: PortOption = None,
    ssl_certfile: CertOption = None,
    ssl_keyfile: KeyOption = None,
) -> None:
    """Run the dagship server in the foreground (the same as `dagship server`)."""
    _serve(host, port, ssl_certfile, ssl_keyfile)


def _serve(host: str | None, port: int | None, certfile: Path | None, keyfile: Path | None) -> None:
    # Imported here so that other commands never pay for FastAPI and SQLAlchemy.
    from dagship.server.run import run_server

    code = run_server(host, port, certfile, keyfile)
    if code:
        raise typer.Exit(code)


@app.command()
def scrub(json: JsonOption = False) -> None:
    """Re-hash every stored blob; move damaged ones to the quarantine folder so the next
    deploy uploads them again. Exits 1 if any blob was damaged or missing."""
    from dagship.server.maintenance import scrub_store

    report = scrub_store()
    show(report, lambda: _render_scrub(report), json)
    if not report.clean:
        raise typer.Exit(1)


@app.command()
def gc(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Retention: keep blobs used by deploys newer than this, or uploaded or "
            "asked about since (1h at least; 30d, 12w).",
        ),
    ] = "30d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Delete blobs that no deploy within retention uses (current deploys are always kept)."""
    from dagship.core.durations import parse_duration
    from dagship.server.maintenance import collect_garbage

    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise fail(f"--older-than: {exc}", 2) from None
    report = collect_garbage(seconds, dry_run=dry_run)
    show(report, lambda: _render_gc(report), json)


def _render_scrub(report: ScrubReport) -> None:
    out.print(f"Checked {report.checked} blob(s), {human_bytes(report.checked_bytes)}.")
    for bad in report.damaged:
        err.print(
            f"Damaged: {bad.digest} ({bad.size} bytes hashing to {bad.actual}); "
            f"moved to {bad.quarantined_to}"
        )
    for digest in report.vanished:
        err.print(f"Missing: {digest} is recorded but its file is gone from the store")
    if report.clean:
        out.print("The store is clean.")
    else:
        out.print(
            f"{len(report.damaged)} damaged, {len(report.vanished)} missing: the next deploy "
            "that needs them uploads them again."
        )


def _render_gc(report: GcReport) -> None:
    from dagship.core.durations import format_duration

    verb = "Would delete" if report.dry_run else "Deleted"
    out.print(
        f"{verb} {len(report.removed)} blob(s), {human_bytes(report.removed_bytes)}; kept "
        f"{report.stored - len(report.removed)} of {report.stored} ({report.kept} older than "
        f"{format_duration(report.older_than)} still used by a deploy within retention or a "
        "current deploy)."
    )
