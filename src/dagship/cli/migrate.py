"""``dagship migrate-check``: what a project written for Airflow 2 must change for Airflow 3."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from dagship.cli.common import JsonOption, out, plural, show

if TYPE_CHECKING:
    from dagship.validate.migrate_check import MigrateReport


def migrate_check_command(
    path: Annotated[
        Path, typer.Argument(help="The project folder (the one holding dags/). Default: here.")
    ] = Path("."),
    json: JsonOption = False,
) -> None:
    """List every change the project's code needs for Airflow 3, with file and line: imports
    that moved or were removed, removed DAG and operator arguments, removed context keys and
    template variables. Reads the code without running it (no Airflow needed). Exit code 1
    when a change is needed; deprecated uses that still work are listed as suggested."""
    from dagship.validate.migrate_check import check_project

    report = check_project(path)
    show(report.to_dict(), lambda: render_report(report), json)
    if not report.ok:
        raise typer.Exit(1)


def render_report(report: MigrateReport) -> None:
    if report.findings:
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("Where")
        table.add_column("Change")
        table.add_column("")
        for finding in report.findings:
            status = (
                Text("needed", style="red") if finding.required else Text("suggested", "yellow")
            )
            table.add_row(f"{finding.path}:{finding.line}", finding.message, status)
        out.print(table)
    files = len({finding.path for finding in report.findings})
    if report.needed:
        summary = (
            f"\n{plural(report.needed, 'change')} needed for Airflow 3"
            + (f", {report.suggested} suggested" if report.suggested else "")
            + f", in {plural(files, 'file')} ({plural(report.files, 'file')} read)."
        )
        out.print(summary, style="red")
    elif report.suggested:
        out.print(
            f"\nNo change needed for Airflow 3; {plural(report.suggested, 'deprecated use')} "
            f"to update, in {plural(files, 'file')} ({plural(report.files, 'file')} read)."
        )
    else:
        out.print(f"\nNo change needed for Airflow 3 ({plural(report.files, 'file')} read).")
