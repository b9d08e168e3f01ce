"""Errors of the CI integrations; each message says what to do next."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class IntegrationError(DagshipError):
    """A CI integration cannot do what was asked: write a pipeline or the build's outputs, or
    pick the deployment of a branch."""
