"""Make a new version's tree from a retired one, in place, at the cost of the change.

A tree of 10,000 files built anew costs 10,000 hard links and 10,000 ``lstat`` calls, whatever
the deploy changed. The bundle keeps, besides the current tree and the one before it (for a
reader that resolved the old path just before a switch), the tree before that: the *spare*. The
next version is made from it: the spare is renamed out of ``trees/`` into ``tmp/`` first, so
that nobody reads it while it changes; removed files are unlinked, added and changed files
written as new inodes, paths whose inode differs from the current tree's linked again from it;
the touched paths are checked, and the tree is renamed to the new version's name. A crash
leaves it in ``tmp/``, which the next refresh clears.

Why the untouched files are right: a tree is never changed while it has a name under ``trees/``
(names are unique, and a tree is renamed away before it changes), and the bundle remembers of
each tree it built (a ``TreeRecord``) the tree it linked its unchanged files from (``base``) and
the paths that got an inode of their own (``fresh``: added, changed, or copied where a link
failed). Every other path of a tree is its base's inode. So between two trees linked by a chain
of bases, only the ``fresh`` paths of the trees along it can differ: outside them, the spare's
file *is* the current tree's file (same inode, same mtime, so Airflow sees it unchanged).

What is checked: before reuse, the modification times of the spare's folders against those taken
when it was built (a file added, removed or renamed in a folder changes its time); after, every
touched path for its type, size and executable bit, and changed contents come from cache blobs
checked against their digest, as in a full build. Anything in doubt (no record of a tree, as
after a restart; a tree or manifest missing; a folder changed; an error while updating) means a
full build instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagship.airflow.tree import BuildPlan, place_new, try_link, verify_entries
from dagship.core.manifest import Manifest

# How many bases apart a spare and the current tree may be (the steady state is two).
MAX_CHAIN = 3


@dataclass(frozen=True)
class TreeRecord:
    """What the bundle knows of a tree it built, for as long as the tree keeps its name."""

    base: str | None  # the tree its unchanged files are hard links of
    fresh: frozenset[str]  # its paths whose inode is not the base's
    folders: Mapping[str, int]  # each folder's st_mtime_ns once the tree had its name


def stamp(root: Path, manifest: Manifest) -> dict[str, int]:
    """The modification time of each folder of the tree at ``root`` (``""`` is the root)."""
    base = os.fspath(root)
    return {f: os.lstat(os.path.join(base, f)).st_mtime_ns for f in _folders(manifest)}


def intact(root: Path, record: TreeRecord) -> bool:
    """Whether no file was added to, removed from or renamed in the tree since ``record``."""
    base = os.fspath(root)
    try:
        return all(
            os.lstat(os.path.join(base, folder)).st_mtime_ns == mtime
            for folder, mtime in record.folders.items()
        )
    except OSError:
        return False


def differing(records: Mapping[str, TreeRecord], spare: str, current: str) -> set[str] | None:
    """The paths whose file in tree ``spare`` may not be the current tree's inode, or None when
    the records do not link the two (then nothing is known)."""
    record = records.get(spare)
    if record is not None and record.base == current:
        return set(record.fresh)  # built against the current tree and never switched to
    found: set[str] = set()
    name = current
    for _ in range(MAX_CHAIN):
        record = records.get(name)
        if record is None or record.base is None:
            return None
        found |= record.fresh
        if record.base == spare:
            return found
        name = record.base
    return None


def update(plan: BuildPlan, root: Path, spare: Manifest, differ: set[str]) -> set[str]:
    """Turn the spare tree at ``root`` (the files of ``spare``; outside ``differ``, the inodes of
    the current tree, ``plan.previous_root``) into ``plan.manifest``; check what changed and
    return the paths that got an inode of their own."""
    assert plan.previous is not None and plan.previous_root is not None
    base, current_root = os.fspath(root), os.fspath(plan.previous_root)
    had, current = spare.by_path(), plan.previous.by_path()
    wanted = {entry.path for entry in plan.manifest.entries}
    # Removals first: a removed file's path may be a new file's folder.
    for path in sorted(had.keys() - wanted, reverse=True):
        os.unlink(os.path.join(base, path))
        _remove_empty_folders(base, path)
    touched = []
    fresh: set[str] = set()
    checked: set[str] = set(plan.downloaded)
    for entry in plan.manifest.entries:
        path, key = entry.path, (entry.sha256, entry.executable)
        old, mine = current.get(path), had.get(path)
        unchanged = old is not None and (old.sha256, old.executable) == key
        if unchanged and path not in differ and mine and (mine.sha256, mine.executable) == key:
            continue  # already the current tree's file
        target = os.path.join(base, path)
        if mine is not None:
            os.unlink(target)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        touched.append(entry)
        if unchanged and try_link(os.path.join(current_root, path), target):
            continue
        fresh.add(path)
        place_new(plan, entry, target, checked)
    verify_entries(root, touched)
    return fresh


def _folders(manifest: Manifest) -> set[str]:
    found = {""}
    for entry in manifest.entries:
        folder = entry.path.rpartition("/")[0]
        while folder not in found:
            found.add(folder)
            folder = folder.rpartition("/")[0]
    return found


def _remove_empty_folders(base: str, path: str) -> None:
    folder = path.rpartition("/")[0]
    while folder:
        try:
            os.rmdir(os.path.join(base, folder))
        except OSError:
            return  # not empty: neither is any folder above it
        folder = folder.rpartition("/")[0]
