"""Make a new version's tree from a retired one, in place, at the cost of the change.

A tree of 10,000 files built anew costs 10,000 hard links and 10,000 ``lstat`` calls, whatever
the deploy changed. The bundle keeps, besides the current tree and the one before it (for a
reader that resolved the old path just before a switch), the tree before that: the *spare*. The
next version is made from it: the spare is renamed out of ``trees/`` into ``tmp/`` first, so
that nobody reads it while it changes, then made into the new version and renamed to its name.
A crash leaves it in ``tmp/``, which the next refresh clears.

What the spare holds is read from disk, not assumed: its folders are listed (``scandir``, a few
system calls per folder, no ``stat`` per file) beside the current tree's, and a file is kept
only where the new version has that path unchanged from the current tree *and* the spare's
entry is the current tree's very inode (hard links share it). Every other file is unlinked;
folders the new version has no file in (``__pycache__`` that Python wrote while the tree was
current, folders of removed files) are moved aside and deleted in the background. Then the
missing files are written as a full build writes them: unchanged ones linked from the current
tree (same inode, same mtime: Airflow sees no change), added and changed ones as new inodes
from cache blobs checked against their digest, with their executable bit. The touched paths are
checked for their type, size and executable bit; the kept ones are the current tree's own,
checked when it was built. Any error means a full build instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from dagship.airflow.tree import (
    DELETING,
    BuildPlan,
    place_new,
    remove_tree,
    try_link,
    verify_entries,
)


def update(plan: BuildPlan, root: Path, trash: Path) -> int:
    """Turn the retired tree at ``root`` into ``plan.manifest``, linking unchanged files from
    the current tree (``plan.previous_root``); what it had and the new version lacks goes, its
    folders moved into ``trash`` first. Return how many files were written."""
    assert plan.previous is not None and plan.previous_root is not None
    base, current_root = os.fspath(root), os.fspath(plan.previous_root)
    before, wanted = plan.previous.by_path(), plan.manifest.by_path()
    folders = _folders(wanted)
    current = _inodes(current_root, folders)
    kept: set[str] = set()
    aside = trash / f"{DELETING}{uuid.uuid4().hex[:8]}"
    moved = 0
    for path, item in _listing(base, folders):
        if item.is_dir(follow_symlinks=False):
            aside.mkdir(parents=True, exist_ok=True)
            os.rename(item.path, aside / str(moved))
            moved += 1
            continue
        new, old, inode = wanted.get(path), before.get(path), item.inode()
        if (
            new is not None
            and old is not None
            and (new.sha256, new.executable) == (old.sha256, old.executable)
            and inode
            and inode == current.get(path)
        ):
            kept.add(path)  # the current tree's own file
        else:
            os.unlink(item.path)
    if moved:
        remove_tree(aside, background=True)
    touched = [entry for entry in plan.manifest.entries if entry.path not in kept]
    checked: set[str] = set(plan.downloaded)
    for entry in touched:
        target = os.path.join(base, entry.path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        old = before.get(entry.path)
        if (
            old is not None
            and (old.sha256, old.executable) == (entry.sha256, entry.executable)
            and try_link(os.path.join(current_root, entry.path), target)
        ):
            continue
        place_new(plan, entry, target, checked)
    verify_entries(root, touched)
    return len(touched)


def _inodes(root: str, folders: set[str]) -> dict[str, int]:
    """The inode of every file in ``folders`` of the tree at ``root``, by path, as the folders
    list them."""
    return {
        path: item.inode()
        for path, item in _listing(root, folders)
        if not item.is_dir(follow_symlinks=False)
    }


def _listing(root: str, folders: set[str]) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry of the tree at ``root`` with its path, going down only into ``folders``:
    files anywhere in them, and the folders that are not among them (not entered)."""
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(os.path.join(root, folder)) as items:
            for item in items:
                path = f"{folder}/{item.name}" if folder else item.name
                if item.is_dir(follow_symlinks=False) and path in folders:
                    pending.append(path)
                else:
                    yield path, item


def _folders(paths: Iterable[str]) -> set[str]:
    found = {""}
    for path in paths:
        folder = path.rpartition("/")[0]
        while folder not in found:
            found.add(folder)
            folder = folder.rpartition("/")[0]
    return found
