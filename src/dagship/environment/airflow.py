"""The Airflow settings to run a project: one rule for every Airflow dagship starts.

``dagship parse`` (its parse workers), ``dagship test`` (pytest), the local Airflow of
``dagship quickstart`` and the agent run Airflow with ``airflow_environment``; each adds only
its own settings on top (the parse timeout, the executor and ports, the DAG bundle, ...).

The rules:

- Airflow's home is the given folder, and everything Airflow writes lives under it: its SQLite
  database, the DAG bundles' storage and the logs. Nothing is shared with another Airflow on
  the machine (Airflow's default bundle storage, ``/tmp/airflow/dag_bundles``, would be).
- No example DAGs.
- The project is importable as Airflow sees it in an Astro image: the project root (for
  ``from include.x import y``), ``dags/`` and ``plugins/`` are on ``PYTHONPATH`` before what the
  caller had there; ``dags/`` and ``plugins/`` are Airflow's dags and plugins folders. Without a
  project (the code comes from a DAG bundle) the dags folder is an empty one in the home.
- The caller's settings that would point at another Airflow are dropped: ``AIRFLOW_HOME``,
  ``AIRFLOW_CONFIG`` and every ``AIRFLOW__DATABASE__*`` (a ``..._CMD`` or ``..._SECRET`` variant
  would otherwise still reach the user's own database). So are ``VIRTUAL_ENV`` and
  ``PYTHONHOME``, which belong to the caller's interpreter, not to the environment's.
- Every other variable of the caller (``AIRFLOW__*`` settings, ``AIRFLOW_VAR_*``,
  ``AIRFLOW_CONN_*``, the project's own) passes through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DAGS_FOLDER = "dags"
PLUGINS_FOLDER = "plugins"
# The caller's variables that belong to another Airflow or another Python.
DROPPED = ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "VIRTUAL_ENV", "PYTHONHOME")
DROPPED_PREFIXES = ("AIRFLOW__DATABASE__",)


def airflow_environment(
    airflow_home: Path,
    project: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of an Airflow process for ``project`` (or for code from a DAG
    bundle when None), with its home in ``airflow_home``: ``base`` (default: this process's
    environment) less what points at another Airflow, plus the rules of this module."""
    home = Path(airflow_home).absolute()
    base = os.environ if base is None else base
    env = {
        key: value
        for key, value in base.items()
        if key not in DROPPED and not key.startswith(DROPPED_PREFIXES)
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / DAGS_FOLDER),
        }
    )
    if project is not None:
        env.update(_project_settings(Path(project).absolute(), base.get("PYTHONPATH", "")))
    return env


def _project_settings(project: Path, inherited: str) -> dict[str, str]:
    paths = [project, project / DAGS_FOLDER, project / PLUGINS_FOLDER]
    kept = [path for path in inherited.split(os.pathsep) if path]
    return {
        "PYTHONPATH": os.pathsep.join([*map(str, paths), *kept]),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / PLUGINS_FOLDER),
    }
