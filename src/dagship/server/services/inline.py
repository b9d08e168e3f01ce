"""Inline blobs: the new files of a version, carried in the current-version answer.

When a deploy wakes hundreds of DAG bundles, each would then download the one or two files the
deploy changed: a second request per bundle, for the server and for the bundle. A bundle that
asks ``GET .../dags/current?inline=N`` (with ``If-None-Match`` naming the version it has) gets
those files' contents in the answer instead: the blobs of the new version that its own version
lacks, each whole, as many as fit in ``N`` bytes. Whatever is left out (too big, unreadable)
the bundle downloads as before; it checks every inline blob against its digest, as a download.
"""

from __future__ import annotations

import base64
import json
import logging

from sqlalchemy.orm import Session

from dagship.core.manifest import is_version
from dagship.core.schemas import MAX_INLINE_BYTES
from dagship.server.errors import NotFound
from dagship.server.services.access import AuthToken
from dagship.server.services.manifests import manifest_body
from dagship.server.store.base import BlobStore

log = logging.getLogger("dagship.server")


def base_version(if_none_match: str | None) -> str | None:
    """The one version an ``If-None-Match`` header names, or None (absent, ``*``, a list)."""
    tag = (if_none_match or "").strip().removeprefix("W/").strip('"')
    return tag if is_version(tag) else None


def new_blobs(
    session: Session, body: str, base: str, reader: AuthToken, limit: int
) -> list[tuple[str, int]]:
    """``(digest, size)`` of the blobs of the manifest ``body`` (canonical JSON) that the
    manifest ``base`` lacks, in manifest order, each that fits in what is left of ``limit``
    bytes (at most ``MAX_INLINE_BYTES``); none when ``base`` is not stored or not readable."""
    try:
        had = {entry["sha256"] for entry in json.loads(manifest_body(session, base, reader))}
    except NotFound:
        return []
    chosen: list[tuple[str, int]] = []
    left = min(limit, MAX_INLINE_BYTES)
    for entry in json.loads(body):
        digest, size = entry["sha256"], entry["size"]
        if digest not in had and size <= left:
            had.add(digest)
            chosen.append((digest, size))
            left -= size
    return chosen


def encode_blobs(store: BlobStore, blobs: list[tuple[str, int]]) -> str:
    """The answer's ``blobs``: a JSON list of ``{"sha256", "content"}`` (base64). A blob the
    store cannot read is left out: the bundle downloads it, and reports what is wrong."""
    items: list[str] = []
    for digest, size in blobs:
        try:
            content = b"".join(store.read(digest, size))
        except Exception as exc:  # best effort: see above
            log.warning("blob %s is not sent inline: %s", digest, exc)
            continue
        encoded = base64.b64encode(content).decode("ascii")
        items.append(f'{{"sha256":"{digest}","content":"{encoded}"}}')
    return f"[{','.join(items)}]"
