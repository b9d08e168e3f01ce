"""Manifest route: a stored manifest's entries, served from its canonical JSON."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response

from dagship.core.schemas import ManifestOut
from dagship.server.deps import SessionDep, Viewer
from dagship.server.services import manifests

router = APIRouter(prefix="/manifests", tags=["manifests"])


@router.get("/{version}", response_model=ManifestOut)
def get_manifest(version: str, session: SessionDep, token: Viewer) -> Response:
    body = manifests.manifest_body(session, version, token)
    # The stored body is already the JSON list of entries; splice it in rather than
    # decoding and re-encoding thousands of entries.
    return Response(
        f'{{"version":{json.dumps(version)},"files":{body}}}', media_type="application/json"
    )
