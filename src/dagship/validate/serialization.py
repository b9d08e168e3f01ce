"""DAGs that import but that Airflow cannot serialize.

After importing a DAG file, Airflow's DAG processor serializes each DAG it found; a DAG that
fails there is an import error of its file in Airflow and is never registered, although the
file imports fine. The usual causes are a custom timetable or priority weight strategy that no
plugin registers, and a value Airflow cannot serialize. ``dagship parse`` does the same step
(processor.py, in the worker) and reports each failure with what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagship.validate.tracebacks import cut

_UNREGISTERED = ("is not registered", "Unknown priority strategy")
PLUGIN_HINT = (
    "a custom timetable or priority weight strategy must be registered by an Airflow plugin "
    "in plugins/ (an AirflowPlugin subclass listing it in `timetables` or "
    "`priority_weight_strategies`), with the same import path the DAG file uses"
)


def serialization_error(
    project: Path, failed: Mapping[str, Any], plugin_errors: Mapping[str, str]
) -> tuple[str, str]:
    """The message and traceback for a DAG that Airflow cannot serialize, from the worker's
    ``{"dag_id": ..., "traceback": ...}``; ``plugin_errors`` are the plugins that failed to
    load (file: traceback)."""
    text = str(failed.get("traceback", ""))
    user = cut(text, project)
    message = (
        f"DAG '{failed.get('dag_id')}' imports, but Airflow cannot serialize it, so Airflow's "
        f"DAG processor rejects it: {user.message}"
    )
    if any(marker in text for marker in _UNREGISTERED):
        message += f"\n{PLUGIN_HINT[0].upper()}{PLUGIN_HINT[1:]}"
        if plugin_errors:
            broken = ", ".join(_relative(path, project) for path in sorted(plugin_errors))
            message += f"; these plugins failed to load: {broken}"
    return message, user.text


def _relative(path: str, project: Path) -> str:
    root = str(project) + "/"
    return path[len(root) :] if path.startswith(root) else path
