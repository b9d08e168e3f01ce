"""The error of the agent."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class AgentError(DagshipError):
    """The agent cannot apply a project version or run its components; ``str()`` says why and
    what to do."""
