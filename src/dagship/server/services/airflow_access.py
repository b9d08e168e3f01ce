"""A deployment's Airflow: its URL, who chose it, and the credentials the server sends there.

Only an admin chooses an Airflow URL (a deployment's, or a preview's when it is created); a
preview otherwise gets the server's DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE or its source's URL.
The server sends, in order: the deployment's own credentials (set by an admin, stored
encrypted); for a preview whose URL is its source's or the template's, the source's; else the
server's DAGSHIP_AIRFLOW_* (they were given for the Airflows admins name). A URL nobody
vouches for (``unconfirmed``: a preview's URL given by an operator before this rule) is not
contacted at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from dagship.core.schemas import AirflowCredentials
from dagship.core.vocabulary import AirflowUrlFrom
from dagship.server.db.models import Deployment
from dagship.server.errors import Invalid
from dagship.server.secret_box import SecretBox, SecretError
from dagship.server.settings import AirflowAuth

# The URL origins whose Airflow may receive the preview source's credentials.
_FROM_SOURCE = (AirflowUrlFrom.SOURCE, AirflowUrlFrom.TEMPLATE)


@dataclass(frozen=True)
class Target:
    """Where and how the server talks to a deployment's Airflow; ``problem`` (with ``url``
    None) says why it does not."""

    url: str | None
    auth: AirflowAuth
    problem: str | None = None


def normalized_url(url: str | None) -> str | None:
    """``url`` without its trailing slash (None for none or ""); Invalid if httpx cannot use
    it (the schema has checked its shape)."""
    if not url:
        return None
    try:
        httpx.URL(url).host  # noqa: B018 (the host is checked when it is read)
    except (httpx.InvalidURL, ValueError) as exc:
        raise Invalid(f"airflow_url {url!r} is not a URL the server can reach: {exc}") from None
    return url.rstrip("/")


def set_url(deployment: Deployment, url: str | None, origin: AirflowUrlFrom) -> None:
    deployment.airflow_url = normalized_url(url)
    deployment.airflow_url_from = origin if deployment.airflow_url else None


def set_credentials(
    deployment: Deployment, credentials: AirflowCredentials | None, box: SecretBox
) -> None:
    """Store ``credentials`` encrypted on the deployment (None forgets them)."""
    if credentials is None:
        deployment.airflow_credentials = None
        return
    document = credentials.model_dump(exclude_none=True)
    deployment.airflow_credentials = box.encrypt(json.dumps(document, sort_keys=True))


def target(
    session: Session, deployment: Deployment, default: AirflowAuth, box: SecretBox | None
) -> Target:
    """The URL and credentials the server uses for ``deployment``'s Airflow."""
    url, origin = deployment.airflow_url, deployment.airflow_url_from
    if url is None:
        return Target(None, AirflowAuth())
    if origin not in list(AirflowUrlFrom) or origin == AirflowUrlFrom.UNCONFIRMED:
        return Target(
            None,
            AirflowAuth(),
            f"the Airflow URL of deployment {deployment.name} ({url}) was given when it was "
            "created, before only admins chose Airflow URLs, so the server does not contact "
            "it until an admin sets it again",
        )
    try:
        own = _credentials(deployment, box)
        if own is not None:
            return Target(url, own)
        if origin in _FROM_SOURCE and deployment.preview_source:
            source = session.scalar(
                select(Deployment).where(Deployment.name == deployment.preview_source)
            )
            found = _credentials(source, box) if source is not None else None
            if found is not None:
                return Target(url, found)
    except SecretError as exc:
        return Target(None, AirflowAuth(), str(exc))
    return Target(url, default)


def _credentials(deployment: Deployment, box: SecretBox | None) -> AirflowAuth | None:
    stored = deployment.airflow_credentials
    if stored is None:
        return None
    try:
        if box is None:
            raise SecretError("the server was given no secret key")
        document = json.loads(box.decrypt(stored))
    except SecretError as exc:
        raise SecretError(
            f"the Airflow credentials of deployment {deployment.name} cannot be decrypted: "
            f"{exc}; an admin can set them again with `dagship deployment update "
            f"{deployment.name} --airflow-token-file FILE`"
        ) from None
    return AirflowAuth(
        username=document.get("username"),
        password=document.get("password"),
        token=document.get("token"),
    )
