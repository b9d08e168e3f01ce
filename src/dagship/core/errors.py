"""The root of every error dagship raises on purpose.

``str()`` of a ``DagshipError`` is a message for the person at the keyboard: what went wrong and
what to do next. The CLI prints it after ``Error:`` and exits 1; anything else that escapes is a
bug. Each package subclasses it once for its own concern (docs/architecture.md lists them):
``ProjectError`` for the project on disk, ``ApiError`` for an answer of the dagship server,
``ServiceError`` inside the server, ``AirflowError`` for Airflow's REST API, and so on.
"""

from __future__ import annotations


class DagshipError(Exception):
    """Something dagship was asked to do could not be done; ``str()`` says why."""


class InvalidValueError(DagshipError, ValueError):
    """A value written by a user (a duration, a branch name) that dagship cannot read."""
