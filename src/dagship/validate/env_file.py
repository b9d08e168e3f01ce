"""The project's ``.env``: environment variables for ``dagship parse`` and ``dagship test``.

Astro projects keep local settings in ``.env`` (``AIRFLOW_VAR_*``, ``AIRFLOW_CONN_*``,
``AIRFLOW__*``, the project's own variables), and ``astro dev parse`` / ``astro dev pytest`` run
with it. dagship reads the same file: the project's ``.env`` when there is one, or the file
given with ``--env``. A variable already set in the calling environment wins over the file, so
a CI secret overrides a local value.

The format is Docker's and Compose's: one ``KEY=VALUE`` per line, blank lines and ``#``
comments ignored, an optional ``export`` in front, values optionally in single or double quotes
(``#`` after an unquoted value, past a space, starts a comment).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from dagship.validate.errors import ValidateError

DEFAULT_ENV_FILE = ".env"
_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file; a ValidateError naming the file and line if it is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidateError(f"env file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidateError(f"cannot read env file {path}: {exc}") from exc
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if match is None:
            raise ValidateError(
                f"{path}:{number}: expected KEY=VALUE (a variable name, '=', a value), "
                f"got {stripped[:60]!r}"
            )
        key, value = match.groups()
        variables[key] = _value(value, path, number)
    return variables


def _value(raw: str, path: Path, number: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        if end < 0:
            raise ValidateError(f"{path}:{number}: the value's {quote} quote is not closed")
        value = raw[1:end]
        return value.replace("\\n", "\n") if quote == '"' else value
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


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
