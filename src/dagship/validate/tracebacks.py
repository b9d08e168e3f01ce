"""Import errors as people want to read them: the project's own frames, the file and line.

Airflow records an import error as a formatted traceback that starts deep inside Airflow's
importer. ``cut`` keeps the frames in the project's files (not Airflow, not libraries, not the
import machinery) and the exception itself, and names the file and line to look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)')
_CHAIN = re.compile(
    r"\n(?:During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)\n"
)
_HEADER = "Traceback (most recent call last):"


@dataclass(frozen=True)
class UserTraceback:
    text: str  # the traceback with only the project's frames, paths relative to the project
    message: str  # the exception line, e.g. "ModuleNotFoundError: No module named 'x'"
    file: str | None  # the project file of the innermost project frame
    line: int | None


def cut(text: str, project: Path) -> UserTraceback:
    """Keep the frames of files in ``project`` (outside any site-packages) and the exception."""
    segment = _CHAIN.split(text.strip("\n"))[-1]
    root = str(project) + "/"
    kept: list[str] = []
    exception: list[str] = []
    file = None
    line = None
    keep_frame = False
    in_frames = False
    for row in segment.splitlines():
        match = _FRAME.match(row)
        if match:
            in_frames = True
            path = match["file"]
            keep_frame = path.startswith(root) and "/site-packages/" not in path
            if keep_frame:
                file = path[len(root) :]
                line = int(match["line"])
                kept.append(row.replace(f'"{path}"', f'"{file}"', 1))
            continue
        if row == _HEADER:
            continue
        if in_frames and row.startswith("    "):
            if keep_frame:
                kept.append(row)
            continue
        exception.append(row)
    message = "\n".join(exception).strip() or segment.strip().splitlines()[-1]
    body = [_HEADER, *kept] if kept else []
    return UserTraceback("\n".join([*body, message]), message, file, line)
