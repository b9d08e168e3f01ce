"""The hint after a parse error's message: what it means for this project and what to do.

An import of a module or name that Airflow 3 moved or removed names its replacement (the table
of validate/airflow2.py); a missing module that the project's Astro Runtime image ships says so
(validate/astro_runtime.py); a missing provider names its package; anything else gets the
general advice. A DAG or operator refusing an argument Airflow 3 removed names the new one.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from dagship.environment.build import astro_runtime_tag, project_base_image
from dagship.validate import airflow2
from dagship.validate.astro_runtime import shipped

DEFAULT_IMPORT_HINT = "add the package to requirements.txt, or fix the import"
_MISSING_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")
_MISSING_NAME = re.compile(r"cannot import name '(?P<name>\w+)' from '(?P<module>[\w.]+)'")
_UNEXPECTED_ARGUMENT = re.compile(r"unexpected keyword argument '(?P<name>\w+)'")
_INVALID_ARGUMENTS = re.compile(r"\*\*kwargs: \{(?P<keys>.*)\}")


def import_hint(project: Path, message: str) -> str:
    """The hint for an ImportError or ModuleNotFoundError ``message`` in ``project``."""
    name = _missing_name(message) or _missing_module(message)
    change = airflow2.find(name) if name else None
    if name and change:
        return airflow2.describe(name, change)
    module = _missing_module(message)
    if module is None:
        return DEFAULT_IMPORT_HINT
    image = None
    with contextlib.suppress(OSError):  # an unreadable Dockerfile only costs the hint
        image = project_base_image(project)
    tag = astro_runtime_tag(image) if image else None
    distribution = shipped(module, tag) if tag is not None else None
    if distribution:
        return (
            f"the Astro Runtime image of the Dockerfile ({image}) ships `{distribution}`, but "
            f"dagship's environment holds only Airflow and requirements.txt: add "
            f"`{distribution}` to requirements.txt, at the image's version "
            f"(`docker run --rm {image} pip freeze`)"
        )
    provider = airflow2.provider_distribution(module)
    return f"add `{provider}` to requirements.txt" if provider else DEFAULT_IMPORT_HINT


def argument_hint(message: str) -> str | None:
    """For a DAG or operator refusing an argument Airflow 3 removed: what to pass instead."""
    names = [m["name"] for m in _UNEXPECTED_ARGUMENT.finditer(message)]
    for match in _INVALID_ARGUMENTS.finditer(message):
        names.extend(re.findall(r"'(\w+)':", match["keys"]))
    hints = []
    for name in dict.fromkeys(names):
        argument = airflow2.DAG_ARGUMENTS.get(name) or airflow2.OPERATOR_ARGUMENTS.get(name)
        if argument is not None and argument.required:
            hints.append(airflow2.describe_argument(argument))
    return "; ".join(hints) or None


def _missing_module(message: str) -> str | None:
    match = _MISSING_MODULE.search(message)
    return match["module"] if match else None


def _missing_name(message: str) -> str | None:
    match = _MISSING_NAME.search(message)
    return f"{match['module']}.{match['name']}" if match else None
