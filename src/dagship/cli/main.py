"""The ``dagship`` command: one Typer app, one module per command group."""

from __future__ import annotations

import sys

import typer

from dagship import __version__
from dagship.cli import (
    agent,
    ci,
    deploy,
    deployment,
    deploys,
    init,
    migrate,
    parse,
    preview,
    promote,
    quickstart,
    rollback,
    s3,
    server,
    test,
    token,
)
from dagship.cli.helptext import plain_help
from dagship.core.errors import DagshipError

app = typer.Typer(
    name="dagship",
    help="Deploy Apache Airflow projects to self-hosted deployments: content-addressed, "
    "versioned, rollback-able.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(server.app, name="server")
app.command("init")(init.init_command)
app.command("quickstart")(quickstart.quickstart_command)
app.command("deploy")(deploy.deploy_command)
app.command("parse")(parse.parse_command)
app.command("test", **test.COMMAND)(test.test_command)
app.command("migrate-check")(migrate.migrate_check_command)
app.command("rollback")(rollback.rollback)
app.command("promote")(promote.promote_command)
app.add_typer(deployment.app, name="deployment")
app.add_typer(deploys.app, name="deploys")
app.add_typer(preview.app, name="preview")
app.add_typer(token.app, name="token")
app.add_typer(ci.app, name="ci")
app.add_typer(agent.app, name="agent")
app.add_typer(s3.app, name="s3")


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"dagship {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Deploy Apache Airflow projects to self-hosted deployments."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    command = typer.main.get_command(app)
    plain_help(command)
    try:
        command.main(args=argv, prog_name="dagship", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")
        return 1
    except DagshipError as exc:
        # Imported here: the hints are needed only on this path, and startup stays quick.
        from dagship.cli.hints import message

        sys.stderr.write(f"Error: {message(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
