"""The error of the processes dagship runs on this machine."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class LocalError(DagshipError):
    """A local process (the dagship server, ``airflow standalone``) could not start, did not
    become ready, or stopped on its own; ``str()`` says where its log is."""
