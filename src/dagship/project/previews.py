"""Preview deployments' names, derived from branch names, and idle durations.

Shared by the CLI (to name the preview of a branch without asking the server) and the server
(which derives the same name when it creates the preview).

The rule: lowercase the branch; every run of characters other than ``a-z`` and ``0-9`` becomes
one ``-``; leading and trailing ``-`` are dropped; the result is prefixed with ``preview-``.
Names longer than 63 characters (the limit for deployment names) are cut and end in ``-`` plus
the first 8 hex digits of the SHA-256 of the branch name, so two long branches that share a
prefix still get different names. ``feature/ABC-12 fix`` → ``preview-feature-abc-12-fix``.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "preview-"
MAX_NAME = 63
HASH_DIGITS = 8
_OTHER = re.compile(r"[^a-z0-9]+")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PreviewNameError(ValueError):
    """A branch name from which no preview name can be made."""


def preview_name(branch: str) -> str:
    """The deployment name of the preview of ``branch``."""
    slug = _OTHER.sub("-", branch.strip().lower()).strip("-")
    if not slug:
        raise PreviewNameError(
            f"branch name {branch!r} has no letters or digits to name a preview after; "
            "pass the branch name with --name, e.g. --name feature/abc-12"
        )
    name = PREFIX + slug
    if len(name) <= MAX_NAME:
        return name
    suffix = hashlib.sha256(branch.encode()).hexdigest()[:HASH_DIGITS]
    keep = MAX_NAME - len(PREFIX) - len(suffix) - 1
    return f"{PREFIX}{slug[:keep].rstrip('-')}-{suffix}"


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit s, m, h, d or w (``7d``, ``90s``)."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(
            f"{text!r} is not a duration: use a positive number with an optional unit "
            "s, m, h, d or w, e.g. 90s, 12h, 7d"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]
