"""Deploy references: how a user names one deploy, everywhere a command or the API takes one.

======== ========================================== ============
form     names                                      example
======== ========================================== ============
NAME     the deployment's current deploy            ``prod``
NAME:SEQ its deploy number SEQ                      ``prod:5``
NAME~N   the deploy N before its current one        ``prod~1``
dpl_…    the deploy with that id                    ``dpl_3f9c…``
======== ========================================== ============

Deployment names hold only ``a-z``, ``0-9`` and ``-``, so the forms never overlap. ``NAME~N``
counts deploys, as ``git``'s ``HEAD~N`` counts commits: ``prod~1`` is ``prod:(current - 1)``,
whatever that deploy changed; ``NAME~`` is ``NAME~1`` and ``NAME~0`` is ``NAME``. Which deploy a
reference names is decided by the server when it is read (``NAME`` is the current deploy at
that moment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagship.core.errors import InvalidValueError
from dagship.core.naming import is_deployment_name

FORMS = (
    "NAME (its current deploy), NAME:SEQ (e.g. prod:5), NAME~N (N deploys before the "
    "current, e.g. prod~1) or a deploy id (dpl_…)"
)
DEPLOY_ID_PREFIX = "dpl_"
_DEPLOY_ID = re.compile(r"^dpl_[0-9a-f]{1,64}$")
_NAMED = re.compile(r"^(?P<name>[^:~]+)(?::(?P<seq>[0-9]+)|~(?P<back>[0-9]*))?$")
# Deploy numbers are 32-bit in the database: no deploy has a larger one.
MAX_SEQ = 2**31 - 1


class DeployRefError(InvalidValueError):
    """Text that is not a deploy reference."""


@dataclass(frozen=True)
class DeployRef:
    """One parsed reference: a ``deploy_id``, or a ``deployment`` with either a ``seq`` or
    ``back`` deploys before its current one (0: the current one)."""

    text: str
    deploy_id: str | None = None
    deployment: str = ""
    seq: int | None = None
    back: int = 0

    @property
    def is_current(self) -> bool:
        """True for ``NAME`` (and ``NAME~0``): the deployment's current deploy."""
        return self.deploy_id is None and self.seq is None and self.back == 0


def parse_ref(text: str) -> DeployRef:
    """The reference in ``text``; DeployRefError, naming the forms, when it is none."""
    ref = text.strip()
    if ref.startswith(DEPLOY_ID_PREFIX):
        if not _DEPLOY_ID.match(ref):
            raise DeployRefError(f"{text!r} is not a deploy id: {_forms()}")
        return DeployRef(ref, deploy_id=ref)
    match = _NAMED.match(ref)
    if match is None or not is_deployment_name(match["name"]):
        raise DeployRefError(f"{text!r} is not a deploy reference: {_forms()}")
    name, seq, back = match["name"], match["seq"], match["back"]
    for number in (seq, back):
        if number and (len(number) > 10 or int(number) > MAX_SEQ):
            raise DeployRefError(f"{text[:80]!r}: deploy numbers go up to {MAX_SEQ}; {_forms()}")
    if seq is not None:
        if int(seq) < 1:
            raise DeployRefError(f"{text!r}: deploy numbers start at 1; {_forms()}")
        return DeployRef(ref, deployment=name, seq=int(seq))
    if back is not None:
        return DeployRef(ref, deployment=name, back=int(back) if back else 1)
    return DeployRef(ref, deployment=name)


def unknown_deployment(text: str, deployment: str) -> str:
    """The message for a reference to a deployment that does not exist; a bare number
    (``1``: deploy #1 of which deployment?) is told how to say it."""
    message = f"there is no deployment {deployment!r}, so {text.strip()!r} names no deploy"
    if deployment.isdigit():
        message += f"; for deploy #{deployment} of a deployment write NAME:{deployment}"
    return f"{message}. Use {FORMS}"


def _forms() -> str:
    return f"use {FORMS}"
