"""Manifests: the sorted list of files of a tree, and the version that names it.

A manifest is the sorted list of ``{path, sha256, size, executable}`` for a file
tree. Its version is ``sha256-<hex>`` of the canonical manifest bytes, so the
same tree always has the same version on every machine, and the server can
recompute it instead of trusting the client.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dagship.core.errors import DagshipError

MAX_PATH_BYTES = 1024
VERSION_PREFIX = "sha256-"
# A blob's name: the sha256 of its content, in lowercase hex.
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
VERSION_PATTERN = r"^sha256-[0-9a-f]{64}$"
_DIGEST_RE = re.compile(DIGEST_PATTERN)
_VERSION_RE = re.compile(VERSION_PATTERN)


class ManifestError(DagshipError, ValueError):
    """A manifest that cannot be accepted: bad path, duplicate, bad digest or size."""


@dataclass(frozen=True, order=True)
class ManifestEntry:
    path: str
    sha256: str
    size: int
    executable: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "executable": self.executable,
        }


@dataclass(frozen=True)
class Manifest:
    """A validated, path-sorted list of entries."""

    entries: tuple[ManifestEntry, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, entries: Iterable[ManifestEntry]) -> Manifest:
        """Validate ``entries`` and return them as a sorted manifest.

        Raises ManifestError naming the first bad entry.
        """
        ordered = sorted(entries, key=lambda e: e.path)
        seen: set[str] = set()
        for entry in ordered:
            check_path(entry.path)
            if entry.path in seen:
                raise ManifestError(f"duplicate path in manifest: {entry.path!r}")
            seen.add(entry.path)
            if not isinstance(entry.sha256, str) or not _DIGEST_RE.match(entry.sha256):
                raise ManifestError(
                    f"bad sha256 for {entry.path!r}: expected 64 lowercase hex characters"
                )
            if isinstance(entry.size, bool) or not isinstance(entry.size, int) or entry.size < 0:
                raise ManifestError(f"bad size for {entry.path!r}: {entry.size!r}")
        # A path cannot be both a file and a folder ("a" and "a/b").
        for entry in ordered:
            parent = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
            while parent:
                if parent in seen:
                    raise ManifestError(
                        f"path {parent!r} is a file and also a folder of {entry.path!r}"
                    )
                parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        return cls(tuple(ordered))

    @classmethod
    def from_dicts(cls, items: Iterable[dict[str, object]]) -> Manifest:
        entries = []
        for item in items:
            try:
                entries.append(
                    ManifestEntry(
                        path=item["path"],  # type: ignore[arg-type]
                        sha256=item["sha256"],  # type: ignore[arg-type]
                        size=item["size"],  # type: ignore[arg-type]
                        executable=bool(item.get("executable", False)),
                    )
                )
            except (KeyError, TypeError) as exc:
                raise ManifestError(f"malformed manifest entry: {item!r}") from exc
        return cls.build(entries)

    def to_dicts(self) -> list[dict[str, object]]:
        return [entry.to_dict() for entry in self.entries]

    def canonical_bytes(self) -> bytes:
        """The bytes the version is computed from: compact JSON, keys and paths sorted."""
        return json.dumps(
            self.to_dicts(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @property
    def version(self) -> str:
        return VERSION_PREFIX + hashlib.sha256(self.canonical_bytes()).hexdigest()

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.entries)

    def by_path(self) -> dict[str, ManifestEntry]:
        return {entry.path: entry for entry in self.entries}

    def digests(self) -> set[str]:
        return {entry.sha256 for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)


# The version of a tree with no files; a deployment with no DAGs has this DAG version.
EMPTY_VERSION = Manifest().version


def check_path(path: object) -> None:
    """Refuse anything that is not a plain relative POSIX path inside the tree."""
    if not isinstance(path, str) or not path:
        raise ManifestError(f"empty or non-text path: {path!r}")
    if "\x00" in path:
        raise ManifestError(f"path contains NUL: {path!r}")
    if "\\" in path:
        raise ManifestError(f"path contains a backslash: {path!r}")
    if path.startswith("/"):
        raise ManifestError(f"absolute path: {path!r}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise ManifestError(f"path longer than {MAX_PATH_BYTES} bytes: {path[:60]!r}...")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ManifestError(f"path has an empty, '.' or '..' part: {path!r}")


def is_version(text: str) -> bool:
    return bool(_VERSION_RE.match(text))


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


@dataclass(frozen=True)
class TreeDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]

    def to_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(old: Manifest, new: Manifest) -> TreeDiff:
    """Files added, removed and changed (content or executable bit) from ``old`` to ``new``."""
    before, after = old.by_path(), new.by_path()
    return TreeDiff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
        changed=sorted(
            path
            for path in before.keys() & after.keys()
            if (before[path].sha256, before[path].executable)
            != (after[path].sha256, after[path].executable)
        ),
    )
