"""``dagship test``: run the project's tests with pytest in the deployment's environment."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from dagship.cli.common import EnvFileOption, JsonOption, err, show


class PytestArgsCommand(TyperCommand):
    """Everything after ``--`` goes to pytest untouched (in ``ctx.meta["pytest_args"]``), so
    ``dagship test -- tests/dags`` is not read as the project PATH."""

    # ``ctx`` is Typer's Click context (typed Any: Typer versions differ in where Click lives).
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            args, ctx.meta["pytest_args"] = args[:cut], args[cut + 1 :]
        return list(super().parse_args(ctx, args))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[-- PYTEST_ARGS]..."]


# `app.command("test", **COMMAND)(test_command)` in cli/main.py.
COMMAND: dict[str, Any] = {"cls": PytestArgsCommand}


def test_command(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(help="The project folder (the one holding dags/). Default: here."),
    ] = Path("."),
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Use the Python running dagship (with its Airflow) instead of the "
            "deployment's environment (built with uv from the Dockerfile or dagship.yaml).",
        ),
    ] = False,
    env_file: EnvFileOption = None,
    json: JsonOption = False,
) -> None:
    """Run the project's tests/ with pytest, importable as Airflow sees the project.

    The project root, dags/ and plugins/ are on sys.path (so `import include.x` works),
    AIRFLOW_HOME is the project root as in an Astro image, and Airflow keeps its config,
    database and logs in a throwaway folder, with dags_folder set to the project's dags/.
    Arguments after `--` go to pytest, e.g. `dagship test -- -k example -x`. The exit code is
    pytest's. With --json, pytest's output goes to stderr and a summary to stdout.
    """
    from dagship.validate.pytest_runner import run_project_tests

    if not path.is_dir():
        raise typer.BadParameter(f"{path} is not a folder", param_hint="PATH")
    run = run_project_tests(
        path,
        ctx.meta.get("pytest_args", []),
        local=local,
        on_progress=_progress,
        on_output=_to_stderr if json else _to_stdout,
        color=(sys.stderr if json else sys.stdout).isatty(),
        env_file=env_file,
    )
    environment = run.environment
    summary = {
        "project": str(path.resolve()),
        "exit_code": run.code,
        "passed": run.code == 0,
        "python": str(environment.python),
        "airflow_version": environment.airflow_version,
        "environment": str(environment.location) if environment.location else None,
        "environment_reused": environment.reused,
        "pytest_args": run.pytest_args,
    }
    # People have read pytest's own report already.
    show(summary, lambda: None, json)
    if run.code:
        raise typer.Exit(run.code)


def _progress(message: str) -> None:
    err.print(message)


def _to_stdout(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def _to_stderr(line: str) -> None:
    sys.stderr.write(line)
    sys.stderr.flush()
