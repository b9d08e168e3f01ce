"""Errors of ``dagship parse`` / ``dagship test``; each message says what to do next."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class ValidateError(DagshipError):
    """The project cannot be validated: no usable environment, no Airflow, no dags/ folder."""
