"""Scan a project folder into its two manifests: the DAG bundle and the project.

The DAG bundle is the ``dags/`` subtree (paths relative to ``dags/``); the project is everything
else (paths relative to the root). Symlinks inside the project deploy as the file or folder they
point to; one that is broken, escapes the project, or loops is an error naming it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dagship.core.manifest import Manifest, ManifestEntry, ManifestError
from dagship.project.errors import (
    NotAProjectError,
    SymlinkError,
    UnreadableFileError,
)
from dagship.project.hash_cache import HashCache, Key, stat_key
from dagship.project.ignore import GITIGNORE, Rules, always_excluded, read_spec, root_rules

DAGS_FOLDER = "dags"
_DAGS_PREFIX = DAGS_FOLDER + "/"
# Files up to this size are read in one call; bigger ones are hashed in chunks.
_WHOLE_READ_LIMIT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ScannedTree:
    """A manifest plus where each of its contents can be read on disk."""

    manifest: Manifest
    # digest -> the file-system path of one file with that content (for uploading)
    files: dict[str, str] = field(default_factory=dict)
    # digest -> that file's path relative to the project root (for messages)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version


@dataclass(frozen=True)
class ScannedProject:
    root: Path
    dags: ScannedTree
    project: ScannedTree


@dataclass(frozen=True)
class _File:
    rel: str  # relative to the project root
    path: str  # on disk, as found in the tree (symlinks not resolved)
    executable: bool
    size: int
    key: Key  # what stat says of it, for the hash cache


def scan_project(path: str | os.PathLike[str]) -> ScannedProject:
    """Build the DAG bundle and project manifests of the project folder at ``path``.

    Raises a ProjectError naming the file or folder that cannot be deployed.
    """
    root = Path(path)
    if not root.exists():
        raise NotAProjectError(
            f"{root} does not exist: pass the folder of your Airflow project "
            "(the one that holds dags/)"
        )
    if not root.is_dir():
        raise NotAProjectError(
            f"{root} is not a folder: pass the folder of your Airflow project "
            "(the one that holds dags/)"
        )
    root_real = os.path.realpath(root)
    found: list[_File] = []
    _walk(root_real, str(root), root_real, "", root_rules(root), frozenset({root_real}), found)
    cache = HashCache(root_real)
    hashes = _hash_all(found, cache)
    known = cache.versions(len(found))
    dags: list[tuple[_File, str, int, bool]] = []
    project: list[tuple[_File, str, int, bool]] = []
    for item, (digest, size, cached) in zip(found, hashes, strict=True):
        target = dags if item.rel.startswith(_DAGS_PREFIX) else project
        target.append((item, digest, size, cached))
    scanned = ScannedProject(
        root=root,
        dags=_tree(dags, len(_DAGS_PREFIX), known.get("dags")),
        project=_tree(project, 0, known.get("project")),
    )
    cache.save({"dags": scanned.dags.version, "project": scanned.project.version})
    return scanned


def _tree(
    items: Iterable[tuple[_File, str, int, bool]], strip: int, known: str | None
) -> ScannedTree:
    """The tree of ``items``; ``known``: its version, recorded by the hash cache when every file
    is as it was (the manifest was checked when that version was recorded). The entries of
    files the hash cache knew (``cached``) were checked by the scan that recorded them."""
    entries = []
    checked = set()
    files: dict[str, str] = {}
    names: dict[str, str] = {}
    for item, digest, size, cached in items:
        entry = ManifestEntry(item.rel[strip:], digest, size, item.executable)
        entries.append(entry)
        if cached:
            checked.add(entry.path)
        if digest not in files:
            files[digest] = item.path
            names[digest] = item.rel
    if known is not None:
        return ScannedTree(Manifest.known(entries, known), files, names)
    try:
        manifest = Manifest.build(entries, checked=checked)
    except ManifestError as exc:
        raise UnreadableFileError(
            f"cannot deploy this file name ({exc}): rename it or add it to .dagshipignore"
        ) from exc
    return ScannedTree(manifest, files, names)


def _walk(
    root_real: str,
    folder: str,
    folder_real: str,
    rel: str,
    rules: Rules,
    ancestors: frozenset[str],
    out: list[_File],
) -> None:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError as exc:
        raise UnreadableFileError(
            f"cannot read folder {rel or '.'}: {exc.strerror}: fix its permissions "
            "or add it to .dagshipignore"
        ) from exc
    for entry in entries:
        name = entry.name
        if always_excluded(name):
            continue
        child_rel = f"{rel}/{name}" if rel else name
        _check_name(child_rel)
        link = entry.is_symlink()
        is_dir = os.path.isdir(entry.path) if link else entry.is_dir(follow_symlinks=False)
        if rules.ignored(child_rel, is_dir):
            continue
        real = _check_link(root_real, entry.path, child_rel) if link else None
        if is_dir:
            # Without a symlink, a folder's real path is its parent's plus its name.
            real = real or os.path.join(folder_real, name)
            if real in ancestors:
                raise SymlinkError(
                    f"{child_rel} is a symlink to one of its own parent folders (a loop): "
                    "remove it or add it to .dagshipignore"
                )
            child_rules = rules.nested(child_rel, read_spec(Path(entry.path, GITIGNORE)))
            _walk(root_real, entry.path, real, child_rel, child_rules, ancestors | {real}, out)
            continue
        try:
            st = entry.stat()
        except OSError as exc:
            raise UnreadableFileError(f"cannot read {child_rel}: {exc.strerror}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFileError(
                f"{child_rel} is not a regular file (a socket, pipe or device): "
                "remove it or add it to .dagshipignore"
            )
        out.append(_File(child_rel, entry.path, bool(st.st_mode & 0o111), st.st_size, stat_key(st)))


def _check_name(rel: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnreadableFileError(
            f"the name of {rel!r} is not valid UTF-8: rename it or add it to .dagshipignore"
        ) from exc


def _check_link(root_real: str, link: str, rel: str) -> str:
    """The real path a symlink points to, if it exists inside the project."""
    target = os.path.realpath(link)
    if not os.path.exists(target):
        raise SymlinkError(
            f"{rel} is a broken symlink (it points to {os.readlink(link)!r}, which does not "
            "exist): fix or remove it, or add it to .dagshipignore"
        )
    if target != root_real and not target.startswith(root_real + os.sep):
        raise SymlinkError(
            f"{rel} is a symlink to {target}, outside the project folder: only links inside "
            "the project are deployed; copy the file in, or add the link to .dagshipignore"
        )
    return target


def _hash_all(files: list[_File], cache: HashCache) -> list[tuple[str, int, bool]]:
    """``(sha256 hex, size, from cache)`` of each file, in order; unchanged files from
    ``cache``.

    One thread on purpose: for many small files the work is per-file system calls, and a
    thread pool measured 2-3x slower than a plain loop (GIL hand-offs).
    """
    hashes = []
    for item in files:
        digest = cache.get(item.rel, item.key)
        if digest is None:
            digest, size = hash_file(item.path, item.size)
            # Recorded only if the file was not rewritten while it was read.
            if size == item.size:
                cache.put(item.rel, item.key, digest)
            hashes.append((digest, size, False))
        else:
            hashes.append((digest, item.size, True))
    return hashes


def hash_file(path: str | os.PathLike[str], size_hint: int = -1) -> tuple[str, int]:
    """``(sha256 hex, size)`` of the file's content as it is now.

    ``size_hint`` (the size from a recent stat) lets small files be read in one exact call;
    a buffer much larger than the file costs more than the read itself.
    """
    first = size_hint + 1 if 0 <= size_hint < _WHOLE_READ_LIMIT else _CHUNK
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise UnreadableFileError(
            f"{path} disappeared while the project was being scanned: run the command again"
        ) from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = os.read(fd, first)
        if len(data) < first:
            return hashlib.sha256(data).hexdigest(), len(data)
        digest = hashlib.sha256(data)
        size = len(data)
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)
