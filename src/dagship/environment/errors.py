"""The error of the deployment's environment."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class EnvironmentBuildError(DagshipError):
    """The deployment's environment cannot be built: its Airflow version is unknown, uv is
    missing, or the project's requirements do not install; ``str()`` says what to do."""
