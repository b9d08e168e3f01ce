"""Parse-time placeholders for Airflow Variables, Connections and environment variables.

A DAG file that reads ``Variable.get("bucket")``, ``BaseHook.get_connection("warehouse")`` or
``os.environ["API_URL"]`` at top level parses in the deployment, where those exist, but not on a
laptop or in CI. During ``dagship parse`` such reads get placeholder values instead of failing,
the way Astro's default DAG integrity test patches them. Real values still win: a Variable or
Connection set through ``AIRFLOW_VAR_*`` / ``AIRFLOW_CONN_*``, an environment variable that is
set, and an explicit default all behave as usual.

Environment placeholders are given only to code in the project folder, never to Airflow or
libraries, whose behaviour must not change because a setting is absent.

This module runs inside the parse worker, in the deployment's environment: it needs only the
standard library and Airflow (dagship itself is not installed there).
"""

from __future__ import annotations

import os
import sys
from typing import Any

# What the file being parsed read through a placeholder ("variable bucket", "env API_URL").
used: list[str] = []
_project_root = ""
_skipped_files: set[str] = set()


class PlaceholderDict(dict):
    """The placeholder for ``Variable.get(key, deserialize_json=True)``: any key reads."""

    def __missing__(self, key: object) -> str:
        return f"placeholder-{key}"


def variable_placeholder(key: str, deserialize_json: bool) -> Any:
    used.append(f"variable {key}")
    return PlaceholderDict() if deserialize_json else f"placeholder-variable-{key}"


def env_placeholder(key: str) -> str:
    used.append(f"env {key}")
    return f"placeholder-env-{key}"


def install(project_root: str) -> None:
    """Patch Airflow's Variable and Connection lookups and ``os.environ`` (once per worker)."""
    global _project_root
    _project_root = os.path.abspath(project_root) + os.sep
    _patch_variables()
    _patch_connections()
    _patch_environ()


def _patch_variables() -> None:
    from airflow.sdk.definitions.variable import Variable

    Variable.get = staticmethod(_variable_get(Variable.get))  # type: ignore[method-assign]
    try:
        from airflow.models.variable import Variable as VariableModel
    except ImportError:
        return
    VariableModel.get = staticmethod(_variable_get(VariableModel.get))  # type: ignore[method-assign]


def _variable_get(original: Any) -> Any:
    def get(key: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(key, *args, **kwargs)
        except Exception:
            # Not set anywhere and no default: the deployment has it, the parse does not.
            deserialize_json = kwargs.get("deserialize_json", args[1] if len(args) > 1 else False)
            return variable_placeholder(key, bool(deserialize_json))

    return get


def _patch_connections() -> None:
    from airflow.sdk.definitions.connection import Connection

    original = Connection.get

    def get(conn_id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(conn_id, *args, **kwargs)
        except Exception:
            used.append(f"connection {conn_id}")
            return Connection(conn_id=conn_id, conn_type="generic")

    Connection.get = staticmethod(get)  # type: ignore[method-assign]
    try:
        from airflow.models.connection import Connection as ConnectionModel
    except ImportError:
        return
    original_model = ConnectionModel.get_connection_from_secrets

    def get_from_secrets(conn_id: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_model(conn_id, *args, **kwargs)
        except Exception:
            used.append(f"connection {conn_id}")
            return ConnectionModel(conn_id=conn_id, conn_type="generic")

    ConnectionModel.get_connection_from_secrets = staticmethod(get_from_secrets)  # type: ignore[method-assign]


def _patch_environ() -> None:
    import _collections_abc

    # Frozen standard modules (Python 3.11+) report "<frozen os>" as their file name.
    _skipped_files.update({os.__file__, _collections_abc.__file__, __file__})
    _skipped_files.update({"<frozen os>", "<frozen _collections_abc>"})
    os.environ.__class__ = _PlaceholderEnviron


def _called_from_project() -> bool:
    """Whether the code reading the environment (past os and Mapping helpers) is the project's."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _skipped_files:
        frame = frame.f_back  # type: ignore[assignment]
    return frame is not None and frame.f_code.co_filename.startswith(_project_root)


class _PlaceholderEnviron(os._Environ):
    def __getitem__(self, key: str) -> str:
        try:
            return super().__getitem__(key)
        except KeyError:
            if not _called_from_project():
                raise
            return env_placeholder(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            if default is not None or not _called_from_project():
                return default
            return env_placeholder(key)
