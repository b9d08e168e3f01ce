"""Manifests: the sorted list of files of a tree, and the version that names it.

A manifest is the sorted list of ``{path, sha256, size, executable}`` for a file
tree. Its version is ``sha256-<hex>`` of the canonical manifest bytes, so the
same tree always has the same version on every machine, and the server can
recompute it instead of trusting the client.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Container, Iterable
from dataclasses import dataclass, field

from dagship.core.errors import DagshipError

# What Linux, macOS and Windows file systems all hold: a path of at most 4096 bytes (PATH_MAX)
# whose names are at most 255 bytes (NAME_MAX), in UTF-8.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
# A file's size is a 64-bit signed integer in the database.
MAX_SIZE = 2**63 - 1
VERSION_PREFIX = "sha256-"
# A blob's name: the sha256 of its content, in lowercase hex. The patterns are for the API's
# JSON Schema (where ``$`` is the end of the text); Python matches them whole (``fullmatch``),
# since its ``$`` also matches before a trailing newline.
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
VERSION_PATTERN = r"^sha256-[0-9a-f]{64}$"
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_VERSION_RE = re.compile(r"sha256-[0-9a-f]{64}")
# Control characters (C0 and DEL): no checkout or Airflow worker can be trusted with them.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# ``C:x`` is a path relative to drive C's current folder on Windows, not a file named "C:x".
_DRIVE_RE = re.compile(r"[A-Za-z]:")
_ENTRY_KEYS = frozenset({"path", "sha256", "size", "executable"})


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
    # The version, when it was computed from these same entries before (``known``).
    known_version: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def known(cls, entries: Iterable[ManifestEntry], version: str) -> Manifest:
        """The manifest of ``entries`` that ``build`` accepted before, with the ``version``
        computed then: neither checked nor hashed again (the scan's hash cache, for a tree
        whose every file is as it was)."""
        return cls(tuple(sorted(entries, key=lambda e: e.path)), version)

    @classmethod
    def build(
        cls,
        entries: Iterable[ManifestEntry],
        *,
        portable: bool = True,
        checked: Container[str] = (),
    ) -> Manifest:
        """Validate ``entries`` and return them as a sorted manifest.

        ``portable``: also refuse paths that differ only in case or Unicode form (one file on
        macOS and Windows). New manifests are checked so; readers of deploys made before
        that rule pass False, so a tree already deployed keeps working on Linux.

        ``checked``: paths whose entries passed ``check_entry`` before (a scan's files that its
        hash cache knew); the manifest as a whole is checked all the same.

        Raises ManifestError naming the first bad entry.
        """
        items = list(entries)
        for entry in items:
            if entry.path not in checked:
                check_entry(entry)
        ordered = sorted(items, key=lambda e: e.path)
        _check_unique(ordered, portable)
        return cls(tuple(ordered))

    @classmethod
    def from_dicts(cls, items: Iterable[object], *, portable: bool = True) -> Manifest:
        """A manifest from its JSON form: objects with exactly the keys of an entry."""
        return cls.build((_entry(item) for item in items), portable=portable)

    def to_dicts(self) -> list[dict[str, object]]:
        return [entry.to_dict() for entry in self.entries]

    def canonical_bytes(self) -> bytes:
        """The bytes the version is computed from: compact JSON, keys and paths sorted."""
        return self._canonical

    @functools.cached_property
    def _canonical(self) -> bytes:
        # Kept once computed: the version and the stored body are both these bytes.
        return json.dumps(
            self.to_dicts(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @functools.cached_property
    def version(self) -> str:
        if self.known_version is not None:
            return self.known_version
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


def check_entry(entry: ManifestEntry) -> None:
    """Refuse an entry whose path, digest, size or executable bit cannot be deployed."""
    check_path(entry.path)
    if not isinstance(entry.sha256, str) or not _DIGEST_RE.fullmatch(entry.sha256):
        raise ManifestError(f"bad sha256 for {entry.path!r}: expected 64 lowercase hex characters")
    size = entry.size
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise ManifestError(f"bad size for {entry.path!r}: {entry.size!r}")
    if not isinstance(entry.executable, bool):
        raise ManifestError(
            f"bad executable for {entry.path!r}: {entry.executable!r} (true or false)"
        )


def check_path(path: object) -> None:
    """Refuse anything that is not a plain relative POSIX path inside the tree, which every
    checkout (Linux, macOS, Windows) and every Airflow worker can write.

    The one home of these rules: the server refuses such a manifest and ``dagship deploy``
    refuses the file before any upload, with the same message.
    """
    if not isinstance(path, str) or not path:
        raise ManifestError(f"empty or non-text path: {path!r}")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise ManifestError(f"path is not valid UTF-8 text: {path!r}") from None
    if size > MAX_PATH_BYTES:
        raise ManifestError(f"path longer than {MAX_PATH_BYTES} bytes: {path[:60]!r}...")
    if _CONTROL_RE.search(path):
        raise ManifestError(f"path contains a control character: {path!r}")
    if "\\" in path:
        raise ManifestError(f"path contains a backslash: {path!r}")
    if path.startswith("/"):
        raise ManifestError(f"absolute path: {path!r}")
    if _DRIVE_RE.match(path):
        raise ManifestError(f"path starts with a Windows drive letter: {path!r}")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ManifestError(f"path has an empty, '.' or '..' part: {path!r}")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise ManifestError(
                f"path has a name longer than {MAX_NAME_BYTES} bytes, which no file system "
                f"holds: {part[:60]!r}... in {path[:120]!r}"
            )


@dataclass(frozen=True)
class ManifestDelta:
    """How the manifest of ``version`` differs from the manifest of version ``base``: the
    entries it adds or changes, and the paths it removes. Each path appears at most once."""

    base: str
    version: str
    changed: tuple[ManifestEntry, ...] = ()
    removed: tuple[str, ...] = ()

    @classmethod
    def from_dicts(
        cls, base: str, version: str, changed: Iterable[object], removed: Iterable[object]
    ) -> ManifestDelta:
        """A delta from its JSON form, every entry checked as a manifest's and no path twice.

        Raises ManifestError naming the first bad entry or path.
        """
        entries = tuple(_entry(item) for item in changed)
        paths = tuple(removed)
        seen: set[object] = set()
        for entry in entries:
            check_entry(entry)
            _once(entry.path, seen)
        for path in paths:
            check_path(path)
            _once(path, seen)
        return cls(base, version, entries, paths)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.changed) + len(self.removed)

    def touched(self) -> set[str]:
        """Every path the delta adds, changes or removes."""
        return {entry.path for entry in self.changed} | set(self.removed)

    def apply(self, base: Manifest) -> Manifest:
        """The manifest ``base`` (of version ``self.base``) becomes with this delta.

        Raises ManifestError when a removed path is not in ``base``, when the result is not a
        manifest (a path both a file and a folder, or that differs from another in case only),
        or when it is not of ``self.version``.
        """
        result = self._apply(base) if self else base
        if result.version != self.version:
            raise ManifestError(
                f"applied to version {self.base} it gives version {result.version}, not "
                f"{self.version} as it says; send the whole manifest"
            )
        return result

    def _apply(self, base: Manifest) -> Manifest:
        present = base.by_path()
        absent = [path for path in self.removed if path not in present]
        if absent:
            raise ManifestError(
                f"removed path {absent[0]!r} is not in base version {self.base}"
                + (f" ({len(absent)} such paths)" if len(absent) > 1 else "")
            )
        touched = self.touched()
        kept = [entry for entry in base.entries if entry.path not in touched]
        ordered = sorted([*kept, *self.changed], key=lambda e: e.path)
        _check_unique(ordered, portable=True)
        return Manifest(tuple(ordered))


def delta(old: Manifest, new: Manifest) -> ManifestDelta:
    """The delta that turns ``old`` into ``new``."""
    before = {entry.path: entry for entry in old.entries}
    changed = tuple(entry for entry in new.entries if before.pop(entry.path, None) != entry)
    # What is left of ``before`` is what ``new`` lacks; it stays sorted by path.
    return ManifestDelta(old.version, new.version, changed, tuple(before))


def _once(path: object, seen: set[object]) -> None:
    if path in seen:
        raise ManifestError(f"path {path!r} appears twice in the delta: name each path once")
    seen.add(path)


def _entry(item: object) -> ManifestEntry:
    if not isinstance(item, dict):
        raise ManifestError(f"malformed manifest entry (not an object): {item!r:.200}")
    unknown = item.keys() - _ENTRY_KEYS
    if unknown:
        raise ManifestError(
            f"manifest entry has unknown keys {sorted(map(str, unknown))!r:.200}: "
            "expected path, sha256, size, executable"
        )
    missing = {"path", "sha256", "size"} - item.keys()
    if missing:
        lacks = ", ".join(sorted(missing))
        raise ManifestError(f"malformed manifest entry, it lacks {lacks}: {item!r:.200}")
    return ManifestEntry(
        path=item["path"],
        sha256=item["sha256"],
        size=item["size"],
        executable=item.get("executable", False),
    )


def _check_unique(ordered: list[ManifestEntry], portable: bool) -> None:
    """No two paths the same, even where a file system folds Unicode forms (NFC and NFD,
    macOS) or case (macOS, Windows); and no path both a file and a folder (``a``, ``a/b``).

    ``ordered`` is sorted by path. Each check is one pass, and each folder is looked up once,
    so a large manifest with deep paths costs O(n), not O(n x depth).
    """
    seen: dict[str, str] = {}
    for entry in ordered:
        key = _fold(entry.path) if portable else entry.path
        other = seen.get(key)
        if other == entry.path:
            raise ManifestError(f"duplicate path in manifest: {entry.path!r}")
        if other is not None:
            raise ManifestError(
                f"paths {other!r} and {entry.path!r} differ only in case or Unicode form: "
                "they are one file on macOS and Windows; rename one"
            )
        seen[key] = entry.path
    files = {entry.path for entry in ordered}
    folders: set[str] = set()
    for entry in ordered:
        path = entry.path
        end = path.rfind("/")
        # Each folder is looked up once: its own folders were when it was first seen.
        while end > 0 and (folder := path[:end]) not in folders:
            if folder in files:
                raise ManifestError(f"path {folder!r} is a file and also a folder of {path!r}")
            folders.add(folder)
            end = path.rfind("/", 0, end)


def _fold(path: str) -> str:
    """What macOS and Windows take for the same name: one Unicode form, one case."""
    # ASCII text is its own NFC form: most paths skip the normalization.
    return path.lower() if path.isascii() else unicodedata.normalize("NFC", path).lower()


def is_version(text: str) -> bool:
    return bool(_VERSION_RE.fullmatch(text))


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.fullmatch(text))


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
