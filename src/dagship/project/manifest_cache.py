"""The manifests this machine deployed last, kept by version, so that the next deploy sends only
what changed since (a manifest delta, docs/api.md) instead of every file's entry.

One file per version under ``$DAGSHIP_CACHE_DIR/manifests/``, holding the manifest's canonical
bytes: a file whose bytes do not hash to its version is ignored, so a damaged or half-written
one only means the whole manifest is sent. The newest ``KEEP`` files are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from dagship.core.manifest import VERSION_PREFIX, Manifest, ManifestEntry, is_version
from dagship.files import cache_dir, write_atomic

# Enough for a few deployments of a few projects; a 10,000-file manifest is about 1.3 MB.
KEEP = 8


def folder() -> Path:
    return cache_dir() / "manifests"


def load(version: str) -> Manifest | None:
    """The manifest of ``version`` if it is kept here (and intact), else None."""
    if not is_version(version):
        return None
    try:
        body = (folder() / f"{version}.json").read_bytes()
    except OSError:
        return None
    if VERSION_PREFIX + hashlib.sha256(body).hexdigest() != version:
        return None
    try:
        # The bytes are those of a manifest that was checked when it was kept.
        entries = tuple(
            ManifestEntry(item["path"], item["sha256"], item["size"], item["executable"])
            for item in json.loads(body)
        )
    except (ValueError, TypeError, KeyError):
        return None
    return Manifest(entries, version)


def keep(manifest: Manifest) -> None:
    """Keep ``manifest`` for the next deploy; best effort, and the oldest beyond ``KEEP`` go."""
    target = folder() / f"{manifest.version}.json"
    try:
        if target.exists():
            os.utime(target)  # newest again: it is what a deployment runs now
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        body = manifest.canonical_bytes()
        if VERSION_PREFIX + hashlib.sha256(body).hexdigest() != manifest.version:
            return  # a version taken from the hash cache that these entries do not have
        write_atomic(target, body)
        _prune(target.parent)
    except OSError:
        return


def _prune(where: Path) -> None:
    kept = sorted(where.glob("sha256-*.json"), key=_mtime, reverse=True)
    for old in kept[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
