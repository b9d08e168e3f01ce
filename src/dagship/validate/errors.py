"""Errors of ``dagship parse`` / ``dagship test``; each message says what to do next."""

from __future__ import annotations

from dagship.project.errors import ProjectError


class ValidateError(ProjectError):
    """The project cannot be validated: no usable environment, no Airflow, no dags/ folder."""
