"""What ``--help`` shows next to each parameter: a name for its value (``URL``, ``N``,
``SECONDS``, ``[viewer|operator]``), nothing for a flag, never a Python type tag.

Recent Typer versions print the annotation's type (``<str>``, ``<bool>``, ``<int range>``) in
the help of every parameter, which tells a user nothing they can type. ``plain_help`` walks the
command tree once, before it runs, and gives each parameter a value name instead. It reads the
parameters by the attributes Click and every Typer version share (``opts``, ``metavar``,
``is_flag``), since newer Typer versions carry their own copy of Click.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

# Value names by the option's long name, where the name alone says too little.
VALUE_NAMES = {
    "--url": "URL",
    "--token": "TOKEN",
    "--timeout": "SECONDS",
    "--limit": "N",
    "--seq": "N",
    "--expect-seq": "N",
    "--jobs": "N",
    "--description": "TEXT",
    "--deployment": "NAME",
    "--from": "NAME",
    "--to": "NAME",
    "--preview-from": "NAME",
    "--airflow-bundle": "NAME",
    "--airflow-url": "URL",
    "--airflow-token-file": "FILE",
    "--airflow-username": "NAME",
    "--airflow-password-file": "FILE",
    "--after": "CURSOR",
    "--airflow-port": "PORT",
    "--dir": "PATH",
    "--env": "FILE",
    "--github-output": "FILE",
    "--expires-in": "DURATION",
    "--idle": "DURATION",
}


def plain_help(command: Any) -> None:
    """Give every parameter of ``command`` and its subcommands a plain value name."""
    for param in command.params:
        _plain(param)
    _plain_help_option(command)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def _plain_help_option(command: Any) -> None:
    """``--help`` is made when help is asked for, so it is made plain then."""
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None:
            _plain(option)
            # A flag that is never None needs no conversion: Typer converts other values
            # through Pydantic, whose import would add ~0.1 s to every command's start.
            option.default = False
        return option

    command.get_help_option = get_help_option


def _plain(param: Any) -> None:
    option = getattr(param, "param_type_name", "") == "option"
    takes_value = not (option and (getattr(param, "is_flag", False) or param.count))
    if takes_value and param.metavar is None:
        param.metavar = _value_name(param)
    if hasattr(param, "display_type_rich"):
        # Typer's rich help asks this for the column after the name: empty for a flag (it
        # takes no value) and for an argument (its name is its value name already).
        shown = param.metavar if option and takes_value else None
        param.display_type_rich = lambda ctx: shown


def _value_name(param: Any) -> str:
    choices = _choices(param)
    if choices:
        return "[" + "|".join(_choice(choice) for choice in choices) + "]"
    longs = [opt for opt in param.opts if opt.startswith("--")]
    if longs and longs[0] in VALUE_NAMES:
        return VALUE_NAMES[longs[0]]
    return str(param.name or "value").upper().replace("_", "-")


def _choices(param: Any) -> tuple[Any, ...]:
    for holder in (getattr(param, "type_descriptor", None), getattr(param, "type", None)):
        choices = getattr(holder, "choices", None)
        if choices:
            return tuple(choices)
    return ()


def _choice(choice: Any) -> str:
    return str(choice.value) if isinstance(choice, Enum) else str(choice)
