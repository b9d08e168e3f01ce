"""Build a DAG bundle tree from the blob cache, verify it, and publish it atomically.

A tree is built in a private temporary directory, checked against its manifest, and only
then renamed into place; the DAG processor's stable path (``current``) is a symlink switched
with ``os.replace``, so a reader sees either the old tree or the new one, never a mix.
``reuse.py`` makes a new version's tree from a retired one instead, at the cost of the change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dagship.airflow.blobcache import READ_ONLY, BlobCache, BundleError
from dagship.core.manifest import VERSION_PREFIX, Manifest, ManifestEntry
from dagship.files import write_atomic

EXECUTABLE = 0o555
DELETING = ".deleting-"


@dataclass
class BuildPlan:
    """How to build one tree: from the cache, and from the tree it replaces (if any).

    Files unchanged since ``previous`` are hard-linked from it, keeping their inode and so
    their mtime: Airflow does not see them as changed. Added and changed files get a new
    inode written now (a fresh mtime), because the cache inode of a digest seen before may
    carry an old mtime, and touching it would also touch every other link to it.
    """

    manifest: Manifest
    version: str
    cache: BlobCache
    previous_root: Path | None = None
    previous: Manifest | None = None
    # Digests downloaded by this refresh: their cache inode is new, so linking it is fresh.
    downloaded: set[str] = field(default_factory=set)

    def changed_paths(self) -> list[str]:
        """Paths added or changed since ``previous`` (empty without a previous tree)."""
        if self.previous is None:
            return []
        before = self.previous.by_path()
        return [
            e.path
            for e in self.manifest.entries
            if (old := before.get(e.path)) is None
            or (old.sha256, old.executable) != (e.sha256, e.executable)
        ]


def build(plan: BuildPlan, dest: Path) -> None:
    """Materialize ``plan.manifest`` at ``dest`` (which must not exist), then verify it."""
    dest.mkdir(parents=True)
    before = plan.previous.by_path() if plan.previous is not None else {}
    # Plain string paths: pathlib costs more than the link itself over 10,000 files.
    root, previous_root = os.fspath(dest), os.fspath(plan.previous_root or "")
    made_dirs: set[str] = {""}
    checked: set[str] = set(plan.downloaded)
    for entry in plan.manifest.entries:
        target = os.path.join(root, entry.path)
        folder = entry.path.rpartition("/")[0]
        if folder not in made_dirs:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made_dirs.add(folder)
        old = before.get(entry.path)
        if (
            old is not None
            and previous_root
            and (old.sha256, old.executable) == (entry.sha256, entry.executable)
            and try_link(os.path.join(previous_root, entry.path), target)
        ):
            continue
        place_new(plan, entry, target, checked)
    verify(dest, plan.manifest)


def place_new(plan: BuildPlan, entry: ManifestEntry, target: str, checked: set[str]) -> None:
    """Write ``entry`` at ``target`` from the cache: a new inode (a fresh mtime) when the tree
    replaces another, since the cache inode of a digest seen before may carry an old mtime."""
    if entry.sha256 not in checked:
        # A blob that entered the cache in an earlier refresh is re-hashed before use.
        plan.cache.verify(entry)
        checked.add(entry.sha256)
    fresh_needed = plan.previous is not None
    can_link = not entry.executable and (not fresh_needed or entry.sha256 in plan.downloaded)
    if not (can_link and try_link(plan.cache.path(entry.sha256), target)):
        _copy(plan.cache.path(entry.sha256), target, entry.executable)


def verify(root: Path, manifest: Manifest) -> None:
    """Every manifest file is a regular file with its size and executable bit.

    Contents are trusted because each file is a link to (or a copy of) a cache blob whose
    digest was checked, or a link to a file of the previous, verified tree.
    """
    verify_entries(root, manifest.entries)


def verify_entries(root: Path, entries: Iterable[ManifestEntry]) -> None:
    base = os.fspath(root)
    for entry in entries:
        try:
            st = os.lstat(os.path.join(base, entry.path))
        except OSError as exc:
            raise BundleError(f"built tree is missing {entry.path!r}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            raise BundleError(
                f"built tree has a bad {entry.path!r}: {st.st_size} bytes, expected {entry.size}"
            )
        if bool(st.st_mode & 0o111) != entry.executable:
            raise BundleError(f"built tree has the wrong executable bit on {entry.path!r}")


def matches(root: Path, manifest: Manifest) -> bool:
    try:
        verify(root, manifest)
    except BundleError:
        return False
    return True


def try_link(src: str | Path, dst: str | Path) -> bool:
    try:
        os.link(src, dst)
    except OSError:
        # Cross-device, link count limits, file systems without hard links: copy instead.
        return False
    return True


def _copy(src: Path, dst: str, executable: bool) -> None:
    shutil.copyfile(src, dst)
    os.chmod(dst, EXECUTABLE if executable else READ_ONLY)


# --------------------------------------------------------------------------- publishing


def unique_name(version: str) -> str:
    """A tree directory name: the version plus a random suffix (a version may come back)."""
    return f"{version}.{uuid.uuid4().hex[:8]}"


def version_of(tree_name: str) -> str:
    return tree_name.split(".", 1)[0]


def read_link(link: Path) -> str | None:
    """The name of the tree ``link`` points at, or None when there is no link yet."""
    try:
        return Path(os.readlink(link)).name
    except (FileNotFoundError, OSError):
        return None


def swap_link(link: Path, target: str, tmp_dir: Path) -> None:
    """Point the symlink ``link`` at ``target`` in one atomic rename."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp_link = tmp_dir / f"{link.name}.{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp_link)
    try:
        os.replace(tmp_link, link)
    except BaseException:
        tmp_link.unlink(missing_ok=True)
        raise


def remove_tree(path: Path, background: bool = False) -> None:
    """Remove a tree; renamed aside first so that nobody ever sees it half-deleted.

    With ``background`` the deletion runs in a daemon thread, off the refresh's critical path;
    a leftover ``.deleting-*`` folder is removed by the next prune.
    """
    if path.name.startswith(DELETING):
        doomed = path
    else:
        doomed = path.with_name(f"{DELETING}{path.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(path, doomed)
        except FileNotFoundError:
            return
    if background:
        threading.Thread(target=shutil.rmtree, args=(doomed, True), daemon=True).start()
    else:
        shutil.rmtree(doomed, ignore_errors=True)


# --------------------------------------------------------------------------- manifests


class ManifestStore:
    """Manifests of materialized versions, ``<root>/<version>.json``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._loaded: dict[str, Manifest] = {}

    def path(self, version: str) -> Path:
        return self.root / f"{version}.json"

    def save(self, manifest: Manifest, version: str) -> None:
        self._loaded[version] = manifest
        if self.path(version).exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path(version), manifest.canonical_bytes(), mode=0o600)

    def load(self, version: str) -> Manifest | None:
        if version in self._loaded:
            return self._loaded[version]
        try:
            data = self.path(version).read_bytes()
            # Saved as canonical bytes, so the file hashes to its version.
            if VERSION_PREFIX + hashlib.sha256(data).hexdigest() != version:
                return None
            manifest = Manifest.from_dicts(json.loads(data), portable=False)
        except (OSError, ValueError):
            return None
        self._loaded[version] = manifest
        return manifest

    def prune(self, keep: set[str]) -> None:
        for path in self.root.glob("*.json"):
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                self._loaded.pop(path.stem, None)
