"""Project trees: one folder per project version, built from the blob cache and never seen
half-written.

A tree is ``projects/<version>/``: the version is the hash of its manifest, so a folder of that
name holds exactly that content. It is built in ``tmp/`` with the DAG bundle's tree builder
(hard links to read-only cache blobs, verified against the manifest) and renamed into place in
one step. Trees other than the ones the host runs or may fall back to are removed, and so are
the blobs only they used.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from dagship.agent.errors import AgentError
from dagship.agent.home import AgentHome
from dagship.airflow.blobcache import BlobCache, BlobSource, BundleError
from dagship.airflow.tree import BuildPlan, ManifestStore, build, remove_tree
from dagship.core.manifest import Manifest, ManifestError, is_version
from dagship.core.schemas import ProjectCurrentOut


class ProjectTrees:
    def __init__(self, home: AgentHome) -> None:
        self.home = home
        self.cache = BlobCache(home.blobs)
        self.manifests = ManifestStore(home.root / "cache" / "manifests")

    def path(self, version: str) -> Path:
        return self.home.projects / version

    def has(self, version: str) -> bool:
        return self.path(version).is_dir() and self.manifests.load(version) is not None

    def materialize(self, manifest: Manifest, source: BlobSource) -> Path:
        """The tree of ``manifest``'s version: the existing one, or built now (missing blobs
        downloaded from ``source`` in batches and verified) in ``tmp/`` and renamed into
        place."""
        version = manifest.version
        dest = self.path(version)
        if self.has(version):
            return dest
        try:
            downloaded = self.cache.fetch_batch(self.cache.missing(manifest.entries), source)
            staging = self.home.tmp / f"{version}.{uuid.uuid4().hex[:8]}"
            try:
                build(BuildPlan(manifest, version, self.cache, downloaded=downloaded), staging)
                self.manifests.save(manifest, version)
                remove_tree(dest)  # a folder without its manifest: left by a crash
                os.rename(staging, dest)
            except BaseException:
                remove_tree(staging)
                raise
        except BundleError as exc:
            raise AgentError(f"cannot materialize project version {version}: {exc}") from exc
        return dest

    def prune(self, keep: set[str]) -> list[str]:
        """Remove the trees (and their manifests, and blobs no kept tree uses) whose version is
        not in ``keep``; the versions removed."""
        removed = []
        for path in sorted(self.home.projects.iterdir()):
            if path.name not in keep:
                remove_tree(path)
                removed.append(path.name)
        self.manifests.prune(keep)
        kept = [self.manifests.load(version) for version in keep]
        if all(m is not None for m in kept):  # never delete a blob on incomplete information
            self.cache.collect(set().union(*(m.digests() for m in kept if m is not None)))
        return removed

    def clear_tmp(self) -> None:
        """Leftovers of builds interrupted by a crash."""
        for path in self.home.tmp.iterdir():
            remove_tree(path)


def manifest_of(current: ProjectCurrentOut) -> Manifest:
    """The manifest the server sent, checked against the version it named."""
    try:
        manifest = Manifest.from_dicts(
            (file.model_dump() for file in current.files), portable=False
        )
    except ManifestError as exc:
        raise AgentError(f"the server sent a bad project manifest: {exc}") from exc
    if not is_version(current.version) or manifest.version != current.version:
        raise AgentError(
            f"the server's project version {current.version} does not match its file list "
            f"({manifest.version}): check the server"
        )
    return manifest
