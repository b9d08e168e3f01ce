"""Errors about the project on disk; each message says what to do next."""

from __future__ import annotations

from dagship.core.errors import DagshipError


class ProjectError(DagshipError):
    """The project folder cannot be read or deployed as it is."""


class NotAProjectError(ProjectError):
    """The given path does not exist or is not a folder."""


class SymlinkError(ProjectError):
    """A symlink is broken, escapes the project folder, or loops."""


class UnreadableFileError(ProjectError):
    """A file cannot be read, is not a regular file, or has a name that cannot be deployed."""
