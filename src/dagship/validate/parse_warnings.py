"""Warnings Airflow's DagBag captures while it imports a DAG file.

DagBag records each warning a DAG file raises (a deprecated import such as
``airflow.decorators.dag``, a deprecated argument...) as one line,
``<file>:<line>: <category>: <message>``. ``dagship parse`` shows them (a count per file, the
list with ``--verbose``, all in ``--json``) and never counts them as errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+): (?P<category>[A-Za-z_][\w.]*): (?P<message>.*)$", re.DOTALL
)


@dataclass
class ParseWarning:
    category: str  # e.g. DeprecatedImportWarning
    message: str
    file: str | None = None  # relative to the project when in it, else as Airflow wrote it
    line: int | None = None


def parse_warning(project: Path, text: str) -> ParseWarning:
    """One warning as DagBag wrote it, with the file relative to ``project``."""
    match = _LINE.match(text.strip())
    if match is None:
        return ParseWarning("Warning", text.strip())
    file = match["file"]
    root = str(project) + "/"
    if file.startswith(root):
        file = file[len(root) :]
    # The category's own name: airflow.utils.deprecation_tools.DeprecatedImportWarning reads
    # as DeprecatedImportWarning.
    category = match["category"].rsplit(".", 1)[-1]
    return ParseWarning(category, match["message"].strip(), file, int(match["line"]))
