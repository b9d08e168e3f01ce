"""Names dagship derives: deployment names, DAG bundle names and preview names.

A **deployment name** is lowercase letters, digits and dashes, 1 to 63 characters, starting
and ending with a letter or digit (``DEPLOYMENT_NAME``).

The **DAG bundle** of deployment ``prod`` is called ``dagship-prod`` in Airflow unless the
deployment names another one.

The **preview** of a branch: lowercase the branch; every run of characters other than ``a-z``
and ``0-9`` becomes one ``-``; leading and trailing ``-`` are dropped; the result is prefixed
with ``preview-``. Names longer than 63 characters are cut and end in ``-`` plus the first 8 hex
digits of the SHA-256 of the branch name, so two long branches that share a prefix still get
different names. ``feature/ABC-12 fix`` → ``preview-feature-abc-12-fix``. The CLI uses it to
name the preview of a branch without asking the server; the server derives the same name
when it creates the preview.
"""

from __future__ import annotations

import hashlib
import re

from dagship.core.errors import InvalidValueError

DEPLOYMENT_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
MAX_NAME = 63
BUNDLE_PREFIX = "dagship-"
PREVIEW_PREFIX = "preview-"
HASH_DIGITS = 8
_DEPLOYMENT_NAME = re.compile(DEPLOYMENT_NAME)
_OTHER = re.compile(r"[^a-z0-9]+")


class PreviewNameError(InvalidValueError):
    """A branch name from which no preview name can be made."""


def is_deployment_name(text: str) -> bool:
    return bool(_DEPLOYMENT_NAME.match(text))


def bundle_name(deployment: str) -> str:
    """The default name of deployment ``deployment``'s DAG bundle in Airflow."""
    return BUNDLE_PREFIX + deployment


def preview_name(branch: str) -> str:
    """The deployment name of the preview of ``branch``; PreviewNameError if it has none."""
    slug = _OTHER.sub("-", branch.strip().lower()).strip("-")
    if not slug:
        raise PreviewNameError(
            f"branch name {branch!r} has no letters or digits to name a preview after"
        )
    name = PREVIEW_PREFIX + slug
    if len(name) <= MAX_NAME:
        return name
    suffix = hashlib.sha256(branch.encode()).hexdigest()[:HASH_DIGITS]
    keep = MAX_NAME - len(PREVIEW_PREFIX) - len(suffix) - 1
    return f"{PREVIEW_PREFIX}{slug[:keep].rstrip('-')}-{suffix}"
