"""The deploy flow: scan, decide what changed, upload what is missing, commit one deploy."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError, DeployError
from dagship.core.kinds import Versions, choose_kind
from dagship.core.manifest import Manifest, ManifestDelta
from dagship.core.schemas import (
    Checks,
    DeploymentOut,
    DeployOut,
    DeployRequest,
    ManifestDeltaIn,
)
from dagship.core.vocabulary import Kind, Mode, Origin
from dagship.flows.upload import UploadProgress, UploadStats, upload_missing
from dagship.integrations.ci import detect
from dagship.integrations.source import build_source
from dagship.project.scan import DAGS_FOLDER, ScannedProject, ScannedTree, scan_project

# Called with the kind of deploy once it is known and before anything is uploaded; returns
# the checks to record on the deploy (e.g. {"parse": "passed"}) or raises to block it.
CheckDeploy = Callable[[Kind], Mapping[str, str]]
T = TypeVar("T")


@dataclass(frozen=True)
class Allow:
    """What a deploy may do that the server's guard rails otherwise refuse (docs/guard-rails.md):
    leave the DAG bundle ``empty``, or remove more DAG files than the deployment allows."""

    empty: bool = False
    removals: bool = False


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did. ``deploy`` is the server's Deploy (the current one when
    ``unchanged``); ``uploaded_*`` count what this run uploaded."""

    deploy: DeployOut
    unchanged: bool
    uploaded_files: int = 0
    uploaded_bytes: int = 0

    @property
    def id(self) -> str:
        return self.deploy.id

    @property
    def seq(self) -> int:
        return self.deploy.seq

    @property
    def deployment(self) -> str:
        return self.deploy.deployment

    @property
    def kind(self) -> Kind:
        return self.deploy.kind

    @property
    def dags_version(self) -> str:
        return self.deploy.dags_version

    @property
    def project_version(self) -> str:
        return self.deploy.project_version

    def to_dict(self) -> dict[str, Any]:
        """The deploy as the API writes it, with what this run uploaded and did."""
        return {
            **self.deploy.model_dump(mode="json", by_alias=True),
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "unchanged": self.unchanged,
            "deployed": not self.unchanged,
        }


def deploy(
    client: ApiClient,
    path: str | os.PathLike[str],
    deployment: str,
    mode: Mode = Mode.AUTO,
    expect_seq: int | None = None,
    description: str | None = None,
    on_progress: UploadProgress | None = None,
    env: Mapping[str, str] | None = None,
    check: CheckDeploy | None = None,
    allow: Allow | None = None,
    *,
    check_takes_time: bool = True,
) -> DeployResult:
    """Deploy the project folder at ``path`` to ``deployment``, uploading only new content.

    ``check`` runs once dagship knows what the deploy changes and before any upload: an
    exception from it blocks the deploy with nothing uploaded and no deploy made. When it
    ``check_takes_time``, the server is asked first whether it would take the deploy, so that a
    refused one (role, binding) fails at once rather than after the check; a check that only
    records what was skipped needs no such round trip. ``allow`` lets through what the
    server's guard rails refuse otherwise.
    """
    env = os.environ if env is None else env
    allow = allow or Allow()
    check_dags_folder(path, mode)
    # The deployment is asked for while the project is scanned: neither needs the other, and
    # on a busy machine a round trip to the server takes as long as scanning a large project.
    asked = _started(lambda: client.get_deployment(deployment))
    scanned = scan_project(path)
    target = asked.result()
    kind = _kind(target, scanned, mode, expect_seq)
    if kind is None:
        assert target.current is not None
        _keep(scanned, Kind.FULL)
        return DeployResult(deploy=target.current, unchanged=True)
    checks = None
    if check is not None:
        if check_takes_time:
            client.missing_blobs([], deployment, kind)
        checks = Checks.model_validate(dict(check(kind)))
    deltas = manifest_deltas(target.current, scanned, kind)
    upload = functools.partial(_upload, client, deployment, scanned, kind, on_progress)
    commit = functools.partial(
        _commit, client, deployment, scanned, kind, expect_seq, description, checks, env, allow
    )
    stats = upload(deltas)
    try:
        created = commit(stats, deltas)
    except ApiError as exc:
        if not deltas or not delta_refused(exc):
            raise
        # Someone deployed in between, or a server before deltas: send the whole manifests
        # (and the blobs they need that the server lacks, which a deploy in between may add).
        more = upload({})
        stats = UploadStats(stats.files + more.files, stats.bytes + more.bytes)
        created = commit(stats, {})
    _keep(scanned, kind)
    return DeployResult(created, False, stats.files, stats.bytes)


def _upload(
    client: ApiClient,
    deployment: str,
    scanned: ScannedProject,
    kind: Kind,
    on_progress: UploadProgress | None,
    deltas: Mapping[str, ManifestDelta],
) -> UploadStats:
    """Upload the contents of the trees ``kind`` deploys that the server lacks; of a tree sent
    as a delta (``deltas``, by tree), only its changed entries may be lacking."""
    asked = _asked(scanned, kind, deltas)
    trees = _trees(scanned, kind)
    return upload_missing(client, trees, on_progress, deployment=deployment, kind=kind, asked=asked)


def _commit(
    client: ApiClient,
    deployment: str,
    scanned: ScannedProject,
    kind: Kind,
    expect_seq: int | None,
    description: str | None,
    checks: Checks | None,
    env: Mapping[str, str],
    allow: Allow,
    uploaded: UploadStats,
    deltas: Mapping[str, ManifestDelta],
) -> DeployOut:
    """Commit the deploy, each tree's manifest whole or as its delta (``deltas``, by tree)."""
    request = deploy_request(scanned, kind, expect_seq, description, uploaded, checks, env, deltas)
    request = request.model_copy(
        update={"allow_empty": allow.empty, "allow_removals": allow.removals}
    )
    return client.create_deploy(deployment, request)


def manifest_deltas(
    current: DeployOut | None, scanned: ScannedProject, kind: Kind
) -> dict[str, ManifestDelta]:
    """The delta of each tree ``kind`` deploys from the deployment's ``current`` version of it,
    where this machine keeps that version's manifest (``project.manifest_cache``); a tree
    without one is sent whole."""
    if current is None:
        return {}
    from dagship.project import manifest_cache

    found = {}
    for tree, version in (("dags", current.dags_version), ("project", current.project_version)):
        if tree not in _TREES[kind]:
            continue
        kept = manifest_cache.delta_from(version, _tree(scanned, tree).manifest)
        if kept is not None:
            found[tree] = kept
    return found


def _asked(
    scanned: ScannedProject, kind: Kind, deltas: Mapping[str, ManifestDelta]
) -> set[str] | None:
    """The contents the server may lack (None: any): of a tree sent as a delta, only those of
    its changed entries, since the blobs of its base are the current deploy's."""
    if not deltas:
        return None
    asked: set[str] = set()
    for tree in _TREES[kind]:
        found = deltas.get(tree)
        entries = found.changed if found else _tree(scanned, tree).manifest.entries
        asked.update(entry.sha256 for entry in entries)
    return asked


def delta_refused(exc: ApiError) -> bool:
    """Whether the server refused a deploy for its deltas alone: made against a version that
    is no longer current (409 base_mismatch), not applying, or not known to a server before
    deltas (422 naming the field)."""
    return exc.status in (409, 422) and any(
        field in (exc.detail or "") for field in ("dags_delta", "project_delta")
    )


def _keep(scanned: ScannedProject, kind: Kind) -> None:
    """Keep the manifests a deployment now runs, for the next deploy's deltas."""
    from dagship.project import manifest_cache

    for tree in _TREES[kind]:
        manifest_cache.keep(_tree(scanned, tree).manifest)


def _started(call: Callable[[], T]) -> Future[T]:
    """``call()`` running on a daemon thread, which does not hold up the process's exit when
    the caller fails first (a scan error while the server is slow to answer)."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=run, name="dagship-deploy-ask", daemon=True).start()
    return future


def check_dags_folder(path: str | os.PathLike[str], mode: Mode) -> None:
    """A project folder without ``dags/`` is most likely the wrong folder, not a wish to empty
    the deployment's DAG bundle: refuse it unless only the project is deployed."""
    root = Path(path)
    if mode != Mode.PROJECT and root.is_dir() and not (root / DAGS_FOLDER).is_dir():
        raise DeployError(
            f"no {DAGS_FOLDER}/ folder in {root} — is the root folder right? (an empty "
            f"{DAGS_FOLDER}/ folder deploys an empty DAG bundle; --project deploys the project "
            "alone)"
        )


def _kind(
    target: DeploymentOut, scanned: ScannedProject, mode: Mode, expect_seq: int | None
) -> Kind | None:
    """The kind of deploy that brings ``target`` to ``scanned``; None when nothing changed."""
    current = target.current
    current_seq = current.seq if current else 0
    if expect_seq is not None and expect_seq != current_seq:
        raise DeployError(
            f"deployment {target.name} is at deploy #{current_seq}, not #{expect_seq} as "
            f"expected (--expect-seq): someone deployed in between; check "
            f"`dagship deploys list {target.name}` and deploy again"
        )
    if mode == Mode.DAGS and not target.dag_deploys:
        raise DeployError(
            f"deployment {target.name} has DAG deploys disabled, so every deploy carries the "
            f"whole project: run `dagship deploy` without --dags, or enable them with "
            f"`dagship deployment update {target.name} --dag-deploys`"
        )
    return choose_kind(
        Versions(current.dags_version, current.project_version) if current else None,
        Versions(scanned.dags.version, scanned.project.version),
        dag_deploys=target.dag_deploys,
        mode=mode,
    )


def deploy_request(
    scanned: ScannedProject,
    kind: Kind,
    expect_seq: int | None,
    description: str | None,
    uploaded: UploadStats,
    checks: Checks | None,
    env: Mapping[str, str],
    deltas: Mapping[str, ManifestDelta] | None = None,
) -> DeployRequest:
    """The body of ``POST /deployments/{name}/deploys``: the manifests ``kind`` carries (whole,
    or as their ``deltas`` by tree), who and why (``ci`` when run by a CI system), and the git
    commit the project is at."""
    source = build_source(scanned.root, env)
    sent = {tree: _tree(scanned, tree).manifest for tree in _TREES[kind]}
    deltas = deltas or {}
    return DeployRequest(
        kind=kind,
        dags_manifest=_whole(sent, deltas, "dags"),
        project_manifest=_whole(sent, deltas, "project"),
        dags_delta=_delta_in(deltas.get("dags")),
        project_delta=_delta_in(deltas.get("project")),
        expect_seq=expect_seq,
        origin=_origin(env),
        description=description,
        uploaded_files=uploaded.files,
        uploaded_bytes=uploaded.bytes,
        git_sha=source.sha,
        git_branch=source.branch,
        git_author=source.author,
        git_message=source.message,
        git_dirty=source.dirty,
        checks=checks or Checks(),
    )


def _whole(
    sent: Mapping[str, Manifest], deltas: Mapping[str, ManifestDelta], tree: str
) -> list[dict[str, object]] | None:
    manifest = sent.get(tree)
    return manifest.to_dicts() if manifest is not None and tree not in deltas else None


def _delta_in(found: ManifestDelta | None) -> ManifestDeltaIn | None:
    if found is None:
        return None
    return ManifestDeltaIn(
        base=found.base,
        version=found.version,
        changed=[entry.to_dict() for entry in found.changed],
        removed=list(found.removed),
    )


# The trees each kind of deploy carries.
_TREES = {Kind.DAGS: ("dags",), Kind.PROJECT: ("project",), Kind.FULL: ("dags", "project")}


def _tree(scanned: ScannedProject, tree: str) -> ScannedTree:
    return scanned.dags if tree == "dags" else scanned.project


def _trees(scanned: ScannedProject, kind: Kind) -> list[ScannedTree]:
    return [_tree(scanned, tree) for tree in _TREES[kind]]


def _origin(env: Mapping[str, str]) -> Literal[Origin.CI, Origin.CLI]:
    # detect() counts CI=true from a system it does not know as CI too.
    return Origin.CI if detect(env).in_ci else Origin.CLI
