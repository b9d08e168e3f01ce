"""``dagship parse``: import every DAG file as Airflow does, in the deployment's environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from dagship.cli.common import EnvFileOption, JsonOption, err, out, plural, show
from dagship.core.durations import format_duration

if TYPE_CHECKING:
    from dagship.validate.parse import ParseReport

SLOWEST = 5
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="List every warning (deprecated imports...), not only counts."
    ),
]


ImportTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds one file may take to import. Default: Airflow's "
        "[core] dagbag_import_timeout (30).",
        show_default=False,
    ),
]
StopOption = Annotated[
    bool,
    typer.Option(
        "--stop",
        help="End the project's parse worker, which each parse keeps warm for the next one, "
        "and parse nothing.",
    ),
]


def parse_command(
    path: Annotated[
        Path, typer.Argument(help="The project folder (the one holding dags/). Default: here.")
    ] = Path("."),
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Use this interpreter's Airflow instead of building the deployment's "
            "environment (Airflow version from dagship.yaml or the Dockerfile, requirements.txt).",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Parallel workers. Default: one per core.",
            show_default=False,
        ),
    ] = None,
    timeout: ImportTimeoutOption = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Import every file again, ignoring cached results.")
    ] = False,
    env_file: EnvFileOption = None,
    verbose: VerboseOption = False,
    stop: StopOption = False,
    json: JsonOption = False,
) -> None:
    """Import every DAG file of the project with Airflow's own DagBag, in parallel, and
    serialize each DAG as Airflow's DAG processor does; report the DAGs found, every error
    (file, line, traceback) and the warnings Airflow captured. Exit code 1 on any error;
    warnings never fail the parse."""
    from dagship.environment.build import ensure_environment
    from dagship.validate.parse import parse_project

    if stop:
        stop_command(path, json)
        return

    def progress(message: str) -> None:
        if not json:
            err.print(message)

    environment = ensure_environment(path, local=local, on_progress=progress)
    report = parse_project(
        path, environment, jobs=jobs, timeout=timeout, use_cache=not no_cache, env_file=env_file
    )
    show(report.to_dict(), lambda: render_report(report, verbose=verbose), json)
    if report.files and not json:
        _say_kept_warm()
    if not report.ok:
        raise typer.Exit(1)


def _say_kept_warm() -> None:
    from dagship.validate.parse import forkserver_idle

    idle = forkserver_idle()
    if idle > 0:
        err.print(
            f"The parse worker stays warm for {format_duration(idle)} for the next parse; "
            "`dagship parse --stop` ends it now."
        )


def stop_command(path: Path, json: bool) -> None:
    """``dagship parse --stop``: end the project's warm parse worker."""
    from dagship.validate.parse import stop_forkservers

    stopped = stop_forkservers(path)
    show(
        {"stopped": stopped},
        lambda: out.print(
            f"Stopped {plural(stopped, 'parse worker')} of {path.resolve()}."
            if stopped
            else f"No parse worker of {path.resolve()} was running."
        ),
        json,
    )


def render_report(report: ParseReport, *, verbose: bool = False) -> None:
    """The human output of a parse: a table per file, the slowest files, each error, then the
    warnings (listed with ``verbose``, else counted)."""
    if report.files:
        _render_table(report)
    if len(report.files) > SLOWEST:
        out.print("\nSlowest files:")
        for result in report.slowest(SLOWEST):
            out.print(f"  {result.seconds:6.2f}s  {result.path}")
    for path in report.skipped:
        out.print(f"Skipped {path} (listed in a parse exceptions file)")
    for path, error in report.errors:
        where = f"{path}:{error.line}" if error.line else path
        out.print(
            Text.assemble(
                "\n", ("Error", "red bold"), " in ", (where, "bold"), f" ({error.kind}): "
            ),
            end="",
        )
        out.print(error.message)
        if error.traceback and error.traceback != error.message:
            out.print(_indent(error.traceback))
    _render_warnings(report, verbose)
    cached = sum(1 for result in report.files if result.cached)
    summary = (
        f"\nParsed {plural(len(report.files), 'file')}"
        + (f" ({cached} unchanged, from the cache)" if cached else "")
        + f" in {report.seconds:.1f}s with Airflow {report.airflow_version}: "
        + f"{plural(report.dag_count, 'DAG')}, {plural(len(report.errors), 'error')}"
        + (f", {plural(report.warning_count, 'warning')}" if report.warning_count else "")
        + "."
    )
    if not report.files:
        summary = f"\nNo DAG files to parse in {report.project}/dags."
    out.print(summary, style=None if report.ok else "red")


def _render_table(report: ParseReport) -> None:
    table = Table(title=None, show_edge=False, pad_edge=False)
    table.add_column("File")
    table.add_column("DAGs")
    table.add_column("Tasks", justify="right")
    table.add_column("Time", justify="right")
    table.add_column("Warnings", justify="right")
    table.add_column("Result")
    for result in report.files:
        if result.errors:
            status = Text(plural(len(result.errors), "error"), style="red")
        else:
            status = Text("ok", style="green")
        if result.cached:
            status.append(" (cached)")
        table.add_row(
            result.path,
            ", ".join(dag.dag_id for dag in result.dags) or "-",
            str(result.tasks),
            f"{result.seconds:.2f}s",
            Text(str(len(result.warnings)), style="yellow") if result.warnings else "-",
            status,
        )
    out.print(table)


def _render_warnings(report: ParseReport, verbose: bool) -> None:
    """Each warning with ``verbose``; else one line saying how to see them."""
    if not report.warning_count:
        return
    if not verbose:
        out.print(
            f"\n{plural(report.warning_count, 'warning')} (deprecated imports and the like): "
            "run `dagship parse --verbose` to list them"
        )
        return
    for result in report.files:
        for warning in result.warnings:
            where = warning.file or result.path
            if warning.line:
                where = f"{where}:{warning.line}"
            out.print(
                Text.assemble(
                    "\n", ("Warning", "yellow bold"), " in ", (where, "bold"),
                    f" ({warning.category}): ",
                ),
                end="",
            )  # fmt: skip
            out.print(warning.message)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())
