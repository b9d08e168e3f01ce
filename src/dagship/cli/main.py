"""The ``dagship`` command: one Typer app, one module per command group.

Start-up is kept short (a deploy is often one command in a script or a hook): ``--version`` is
answered before Typer is imported, only the module of the command being run is imported, and
an exact help request (``dagship deploy --help``) is answered from ``help_cache`` once it has been
rendered. ``dagship --help`` (or an unknown name) builds the whole app, so the listing is complete.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from dagship import __version__

if TYPE_CHECKING:
    import typer

# Every top-level command, in the order ``dagship --help`` lists them: name → (module in
# dagship.cli, attribute). The attribute is a Typer app (a command group) or a command function;
# a module may add keyword arguments for ``app.command`` in a ``COMMAND`` dict.
COMMANDS: dict[str, tuple[str, str]] = {
    "server": ("server", "app"),
    "init": ("init", "init_command"),
    "quickstart": ("quickstart", "quickstart_command"),
    "deploy": ("deploy", "deploy_command"),
    "parse": ("parse", "parse_command"),
    "test": ("test", "test_command"),
    "migrate-check": ("migrate", "migrate_check_command"),
    "rollback": ("rollback", "rollback"),
    "promote": ("promote", "promote_command"),
    "deployment": ("deployment", "app"),
    "deploys": ("deploys", "app"),
    "preview": ("preview", "app"),
    "token": ("token", "app"),
    "ci": ("ci", "app"),
    "agent": ("agent", "app"),
    "s3": ("s3", "app"),
}


def build_app(names: list[str] | None = None) -> typer.Typer:
    """The ``dagship`` Typer app with the commands ``names`` (default: all of them)."""
    import typer

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
    app.callback()(_root_callback(typer))
    for name in names if names is not None else list(COMMANDS):
        module_name, attribute = COMMANDS[name]
        module = importlib.import_module(f"dagship.cli.{module_name}")
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name, **getattr(module, "COMMAND", {}))(target)
    return app


def _root_callback(typer: Any) -> Any:
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Deploy Apache Airflow projects to self-hosted deployments."""

    return _root


def _version(value: bool) -> None:
    if value:
        import typer

        sys.stdout.write(f"dagship {__version__}\n")
        raise typer.Exit()


def __getattr__(name: str) -> Any:
    # ``from dagship.cli.main import app``: the whole app, built when first asked for.
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--version"]:
        sys.stdout.write(f"dagship {__version__}\n")
        return 0
    _without_httpx_cli()
    from dagship.cli import help_cache

    if help_cache.is_help_request(args):
        return help_cache.show(args, _command, _invoke)
    return _invoke(_command(args), args)


def _without_httpx_cli() -> None:
    """Keep httpx from importing its own command line client.

    ``import httpx`` imports ``httpx._main`` whenever click, Rich and Pygments are installed, as
    they are beside dagship (uvicorn needs click): about a sixth of an unchanged deploy's CPU time
    goes to loading click, Rich's progress and syntax modules and Pygments' lexers for a client
    dagship never runs. ``None`` in ``sys.modules`` makes that import fail, which httpx expects
    (its ``httpx.main`` then says the CLI is not installed). Only this process is affected.
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _command(args: list[str]) -> Any:
    """The Click command that runs ``args``: the whole app, or only the command named first."""
    import typer

    from dagship.cli.helptext import plain_help

    names = [args[0]] if args and args[0] in COMMANDS else None
    command = typer.main.get_command(build_app(names))
    plain_help(command)
    return command


def _invoke(command: Any, args: list[str]) -> int:
    from dagship.core.errors import DagshipError

    try:
        command.main(args=args, prog_name="dagship", standalone_mode=True)
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
