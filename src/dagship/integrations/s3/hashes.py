"""The SHA-256 of S3 objects already read, remembered by ETag, size and version id, so a
sync of a prefix where one object changed reads only that object."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from dagship.core.manifest import is_digest
from dagship.files import write_atomic

CACHE_ENV = "DAGSHIP_CACHE_DIR"
# Entries beyond this are dropped, oldest first: the file stays small for any bucket.
MAX_ENTRIES = 200_000


def default_cache_file() -> Path:
    root = os.environ.get(CACHE_ENV) or str(Path("~/.cache/dagship").expanduser())
    return Path(root) / "s3" / "hashes.json"


class HashCache:
    """``cache_key`` → digest in one JSON file, replaced atomically; safe between threads.

    A lost or unreadable file only means objects are read again.
    """

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = {}
        if isinstance(loaded, dict):
            self.entries = {k: v for k, v in loaded.items() if isinstance(v, str) and is_digest(v)}

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def save(self, learned: dict[str, str]) -> None:
        if not learned:
            return
        with self._lock:
            fresh = HashCache(self.path).entries
            fresh.update(self.entries)
            fresh.update(learned)
            kept = dict(list(fresh.items())[-MAX_ENTRIES:])
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(kept, separators=(",", ":")))
            self.entries = kept
