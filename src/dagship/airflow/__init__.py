"""Code that runs inside Airflow: the versioned DAG bundle and the Airflow REST client.

``DagshipDagBundle`` is imported lazily so that the server and the CLI can use the REST client
without Apache Airflow installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DagshipDagBundle"]


def __getattr__(name: str) -> Any:
    if name == "DagshipDagBundle":
        from dagship.airflow.bundle import DagshipDagBundle

        return DagshipDagBundle
    raise AttributeError(name)
