"""``dagship init``: scaffold an Airflow project that Astro CLI users recognise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dagship.cli.common import JsonOption, out, plural, show


def init_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="Project folder, created if missing. Default: here.", show_default=False
        ),
    ] = Path("."),
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Add the missing example files to a folder that already has dags/ "
            "(existing files are never overwritten).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Create an Airflow project: dags/ with an example DAG, include/, plugins/, DAG integrity
    tests, requirements.txt, packages.txt, Dockerfile, airflow_settings.yaml, dagship.yaml and
    .dagshipignore. Refuses a folder that already has dags/ unless --force; never overwrites a
    file."""
    from dagship.project.scaffold import init_project

    written = init_project(path, force=force)
    show({"path": str(path.absolute()), "written": written}, lambda: _render(path, written), json)


def _render(path: Path, written: list[str]) -> None:
    if not written:
        out.print(f"{path} already has every example file; nothing written.")
        return
    out.print(
        f"Initialized an Airflow project in {path.absolute()} ({plural(len(written), 'file')}):"
    )
    for rel in written:
        out.print(f"  {rel}")
    out.print("\nNext:")
    out.print(f"  pytest {path / 'tests'}    # DAG integrity tests (needs Apache Airflow)")
    out.print(f"  dagship deploy {path} --deployment local")
