"""The manifests this machine deployed last, kept by version, so that the next deploy sends only
what changed since (a manifest delta, docs/api.md) instead of every file's entry.

One file per version under ``$DAGSHIP_CACHE_DIR/manifests/``: a header with the sha256 of the
rest, then one line per entry, ``SHA256 SIZE EXECUTABLE PATH`` (a path holds no control
character, so no newline). Lines rather than JSON, because a deploy compares them with the scan
as they are: reading 10,000 JSON entries back took 50-90 ms of a deploy's start on a busy
machine. A file whose lines do not match its header is ignored, so a damaged or half-written
one only means the whole manifest is sent. The newest ``KEEP`` files are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from dagship.core.manifest import (
    VERSION_PREFIX,
    Manifest,
    ManifestDelta,
    ManifestEntry,
    is_version,
)
from dagship.files import cache_dir, write_atomic

# Enough for a few deployments of a few projects; a 10,000-file manifest is about 1 MB.
KEEP = 8
_HEADER = b"dagship-manifest 1 "
_SUFFIX = ".manifest"


def folder() -> Path:
    return cache_dir() / "manifests"


def delta_from(version: str, new: Manifest) -> ManifestDelta | None:
    """The delta from the kept manifest of ``version`` to ``new``; None when it is not kept
    (or damaged)."""
    lines = _read(version)
    if lines is None:
        return None
    before = set(lines)
    changed = tuple(entry for entry in new.entries if _line(entry) not in before)
    paths = {entry.path for entry in new.entries}
    # Each line's path is what follows its third space.
    removed = tuple(path for line in lines if (path := line.split(" ", 3)[3]) not in paths)
    return ManifestDelta(version, new.version, changed, removed)


def keep(manifest: Manifest) -> None:
    """Keep ``manifest`` for the next deploy; best effort, and the oldest beyond ``KEEP`` go."""
    target = folder() / f"{manifest.version}{_SUFFIX}"
    try:
        if target.exists():
            os.utime(target)  # newest again: it is what a deployment runs now
            return
        canonical = manifest.canonical_bytes()
        if VERSION_PREFIX + hashlib.sha256(canonical).hexdigest() != manifest.version:
            return  # a version taken from the hash cache that these entries do not have
        body = "".join(_line(entry) + "\n" for entry in manifest.entries).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, _HEADER + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
        _prune(target)
    except OSError:
        return


def load(version: str) -> Manifest | None:
    """The kept manifest of ``version``, if any (for tests and tools: deploys use
    ``delta_from``)."""
    lines = _read(version)
    if lines is None:
        return None
    entries = []
    for line in lines:
        digest, size, executable, path = line.split(" ", 3)
        entries.append(ManifestEntry(path, digest, int(size), executable == "1"))
    return Manifest(tuple(entries), version)


def _line(entry: ManifestEntry) -> str:
    return f"{entry.sha256} {entry.size} {int(entry.executable)} {entry.path}"


def _read(version: str) -> list[str] | None:
    """The entry lines of the kept manifest of ``version``, if intact."""
    if not is_version(version):
        return None
    try:
        data = (folder() / f"{version}{_SUFFIX}").read_bytes()
    except OSError:
        return None
    header, _, body = data.partition(b"\n")
    if header != _HEADER + hashlib.sha256(body).hexdigest().encode():
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Split at "\n" alone: a path may hold other line separators (U+2028, U+0085).
    return text.split("\n")[:-1]


def _prune(written: Path) -> None:
    """Delete the oldest beyond ``KEEP``, never the file just ``written`` (files written within
    one clock tick have the same time)."""
    others = [p for p in written.parent.glob(f"{VERSION_PREFIX}*{_SUFFIX}") if p != written]
    for old in sorted(others, key=_mtime, reverse=True)[KEEP - 1 :]:
        with contextlib.suppress(OSError):
            old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
