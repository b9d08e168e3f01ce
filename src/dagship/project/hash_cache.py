"""The hashes of a project's files, kept between scans and keyed by what ``stat`` says.

An unchanged deploy of a large project is mostly reading every file to hash it again. A file
whose size, modification time, change time and inode are those of the last scan is not read: its
hash is the one recorded then. The change time (``st_ctime_ns``) cannot be set by a program, so a
file rewritten with its old size and modification time restored is still read. A file changed in
the last seconds before a scan is not recorded, since a second change in the same clock tick
would leave its times as they were. One JSON file per project folder under
``$DAGSHIP_CACHE_DIR/hashes/``; a missing or unreadable one only means every file is read.

The versions of the scan's manifests are recorded beside the files: when every file of a scan
is taken from the cache and no recorded file is gone, the manifests are those of the recorded
scan, so their versions are too (an unchanged deploy checks and hashes 10,000 entries once, not
on every scan).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from dagship.files import cache_dir, write_atomic

# Files changed this recently (ns) before the scan are hashed but not recorded.
_SETTLE_NS = 2_000_000_000
_FORMAT = 1

Key = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def stat_key(st: os.stat_result) -> Key:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class HashCache:
    """The recorded ``(key, sha256)`` of each file of one project folder, by relative path."""

    def __init__(self, root_real: str, *, now_ns: int | None = None) -> None:
        name = hashlib.sha256(root_real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
        self.path = cache_dir() / "hashes" / f"{name}.json"
        self.root = root_real
        self._started_ns = time.time_ns() if now_ns is None else now_ns
        self._old, self._old_versions = self._load()
        self._new: dict[str, list[object]] = {}
        self._hits = 0
        # Files of this scan asked for (``get``), recorded or not.
        self._asked = 0

    def _load(self) -> tuple[dict[str, list[object]], dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}, {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            return {}, {}
        if data.get("root") != self.root or not isinstance(data.get("files"), dict):
            return {}, {}
        versions = data.get("versions")
        if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
            versions = {}
        return data["files"], versions

    def get(self, rel: str, key: Key) -> str | None:
        """The recorded hash of ``rel`` if its stat key is unchanged."""
        self._asked += 1
        entry = self._old.get(rel)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == list(key):
            digest = entry[1]
            if isinstance(digest, str) and len(digest) == 64:
                self._new[rel] = entry
                self._hits += 1
                return digest
        return None

    def versions(self, files: int) -> dict[str, str]:
        """The manifests' versions recorded with the last scan, if this scan of ``files``
        files took every one from the cache and found every recorded file (else none)."""
        if files == self._hits == len(self._old):
            return dict(self._old_versions)
        return {}

    def put(self, rel: str, key: Key, digest: str) -> None:
        """Record ``digest`` for ``rel``, unless the file changed too recently to trust it."""
        _, mtime_ns, ctime_ns, _ = key
        if self._started_ns - max(mtime_ns, ctime_ns) > _SETTLE_NS:
            self._new[rel] = [list(key), digest]

    def save(self, versions: dict[str, str] | None = None) -> None:
        """Write the entries of this scan (files gone since are dropped) and the ``versions`` of
        its manifests; best effort. The versions are kept only when every file asked for was
        recorded: a file too recent to record is in the versions, and a next scan that finds
        only the recorded files (that one deleted) must not take them."""
        versions = versions if versions and len(self._new) == self._asked else {}
        if self._new == self._old and versions == self._old_versions:
            return
        body = {"format": _FORMAT, "root": self.root, "files": self._new, "versions": versions}
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(body, separators=(",", ":")))
        except OSError:
            return  # a cache that cannot be written only means the next scan reads every file
