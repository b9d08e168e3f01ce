"""Stored manifests: written once per version, read back as canonical JSON."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import exists, insert, or_, select
from sqlalchemy.orm import Session

from dagship.core.manifest import VERSION_PREFIX, Manifest, ManifestEntry
from dagship.server.db import models
from dagship.server.db.insert import insert_ignore
from dagship.server.db.models import Deploy, utcnow
from dagship.server.errors import NotFound
from dagship.server.services.access import AuthToken


def store_manifest(session: Session, manifest: Manifest) -> str:
    """Store `manifest` unless its version is already stored; returns the version."""
    # Encode once: the version is by definition the hash of these canonical bytes.
    body = manifest.canonical_bytes()
    version = VERSION_PREFIX + hashlib.sha256(body).hexdigest()
    row = {
        "version": version,
        "file_count": len(manifest),
        "total_size": manifest.total_size,
        "body": body.decode("utf-8"),
        "created_at": utcnow(),
    }
    if insert_ignore(session, models.Manifest, [row]):
        files = [
            {
                "version": version,
                "path": entry.path,
                "digest": entry.sha256,
                "size": entry.size,
                "executable": entry.executable,
            }
            for entry in manifest.entries
        ]
        if files:
            # A Core executemany: the ORM bulk path is several times slower for 10k rows.
            session.execute(insert(models.Base.metadata.tables["manifest_files"]), files)
    return version


def manifest_body(session: Session, version: str, reader: AuthToken) -> str:
    """The canonical JSON list of a stored manifest's entries."""
    body = session.scalar(select(models.Manifest.body).where(models.Manifest.version == version))
    if body is None or not readable(session, version, reader):
        raise NotFound(f"manifest {version} is not stored")
    return body


def load_manifest(session: Session, version: str) -> Manifest:
    body = session.scalar(select(models.Manifest.body).where(models.Manifest.version == version))
    if body is None:
        raise NotFound(f"manifest {version} is not stored")
    # Stored bodies were validated on the way in, so they are rebuilt without re-checking.
    return Manifest(tuple(ManifestEntry(**item) for item in json.loads(body)))


def readable(session: Session, version: str, reader: AuthToken) -> bool:
    if reader.deployment_id is None:
        return True
    used = exists().where(
        Deploy.deployment_id == reader.deployment_id,
        or_(Deploy.dags_version == version, Deploy.project_version == version),
    )
    return bool(session.scalar(select(used)))
