"""The project's ``.env``: environment variables for ``dagship parse`` and ``dagship test``.

Astro projects keep local settings in ``.env`` (``AIRFLOW_VAR_*``, ``AIRFLOW_CONN_*``,
``AIRFLOW__*``, the project's own variables), and ``astro dev parse`` / ``astro dev pytest`` run
with it. dagship reads the same file: the project's ``.env`` when there is one, or the file
given with ``--env``. A variable already set in the calling environment wins over the file, so
a CI secret overrides a local value.

The format is Docker Compose's, read by python-dotenv: one ``KEY=VALUE`` per line, blank lines
and ``#`` comments ignored, an optional ``export`` in front, values optionally in single or
double quotes (a quoted value may span lines; ``\\"`` and ``\\n`` are escapes in double quotes;
``#`` after an unquoted value, past a space, starts a comment). ``${NAME}`` and
``${NAME:-default}`` expand to the calling environment's value, else the file's value set
above; single-quoted values are taken literally.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import Binding, parse_stream
from dotenv.variables import parse_variables

from dagship.validate.errors import ValidateError

DEFAULT_ENV_FILE = ".env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# A binding's text up to its value's opening quote, when the value is quoted.
_QUOTED_VALUE = re.compile(r"\s*(?:export\s+)?(?:'[^']*'|[^=\s]+)\s*=[^\S\r\n]*(['\"])")


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file; a ValidateError naming the file and line if it is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidateError(f"env file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidateError(f"cannot read env file {path}: {exc}") from exc
    variables: dict[str, str] = {}
    # python-dotenv's dotenv_values() only logs a line it cannot parse and lets the file win
    # over the calling environment in expansions: its parser and expander are used directly.
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is None and not binding.error:
            continue  # blank lines and comments
        key, value = _checked(path, binding)
        variables[key] = value if _single_quoted(binding) else _expand(value, variables)
    return variables


def _checked(path: Path, binding: Binding) -> tuple[str, str]:
    """The key and the value of a binding, or a ValidateError naming its line."""
    body = binding.original.string.lstrip()
    where = f"{path}:{_line(binding)}"
    quoted = _QUOTED_VALUE.match(body)
    if binding.error and quoted and not _closes(body[quoted.end() :], quoted.group(1)):
        raise ValidateError(f"{where}: the value's {quoted.group(1)} quote is not closed")
    if binding.error or binding.key is None or binding.value is None:
        raise _expected(where, body)  # e.g. a line without '='
    if not _NAME.fullmatch(binding.key):
        raise _expected(where, body)  # python-dotenv takes any key, such as 1ST or a-b
    return binding.key, binding.value


def _line(binding: Binding) -> int:
    """The line a binding's variable is on: its text starts with the blank lines before it."""
    string = binding.original.string
    blank = string[: len(string) - len(string.lstrip())]
    return binding.original.line + blank.count("\n")


def _closes(rest: str, quote: str) -> bool:
    """Whether ``rest`` holds the closing ``quote``: else the parser failed on an open one."""
    return re.search(rf"(?<!\\){quote}", rest) is not None


def _expected(where: str, body: str) -> ValidateError:
    line = body.splitlines()[0] if body else ""
    return ValidateError(
        f"{where}: expected KEY=VALUE (a variable name, '=', a value), got {line[:60]!r}"
    )


def _single_quoted(binding: Binding) -> bool:
    quoted = _QUOTED_VALUE.match(binding.original.string)
    return quoted is not None and quoted.group(1) == "'"


def _expand(value: str, variables: Mapping[str, str]) -> str:
    # The calling environment first: it wins over the file for the DAGs, so in values too.
    scope = {**variables, **os.environ}
    return "".join(atom.resolve(scope) for atom in parse_variables(value))


def project_variables(project: Path, env_file: Path | None = None) -> dict[str, str]:
    """The variables of ``env_file``, else of the project's ``.env`` if it has one."""
    if env_file is not None:
        return read_env_file(env_file)
    default = project / DEFAULT_ENV_FILE
    return read_env_file(default) if default.is_file() else {}


def with_variables(
    variables: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the ``variables`` it does not set."""
    env = dict(os.environ if base is None else base)
    for key, value in variables.items():
        env.setdefault(key, value)
    return env
