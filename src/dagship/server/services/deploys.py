"""Deploys: validating and committing a new state of a deployment, and reading history.

A deploy is committed in the caller's transaction with the deployment row locked, so
deploys to one deployment are serialized and their seq is contiguous; the seq is taken
from the locked row, so a deploy that fails to commit never uses one up.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from dagship.core.manifest import Manifest, ManifestEntry, TreeDiff, diff
from dagship.core.vocabulary import ErrorCode, Kind, Origin, Role
from dagship.server.db import changes
from dagship.server.db.models import Blob, Deploy, Deployment, ManifestFile, utcnow
from dagship.server.errors import Conflict, Invalid, NotFound
from dagship.server.services import access, guard, trees
from dagship.server.services.access import AuthToken
from dagship.server.services.blobs import stored_sizes
from dagship.server.services.deployments import current_deploy, get_deployment
from dagship.server.services.manifests import load_manifest, store_manifest

if TYPE_CHECKING:
    from dagship.core.schemas import DeployRequest

# How many of the blobs a copied deploy lacks its error lists.
MAX_GONE_LISTED = 100

# The role each kind of deploy needs, and how a 403 names such deploys.
KIND_ROLES = {
    Kind.DAGS: (Role.DAG_AUTHOR, "DAG deploys"),
    Kind.PROJECT: (Role.OPERATOR, "project deploys"),
    Kind.FULL: (Role.OPERATOR, "full deploys"),
}


def check_may_deploy(token: AuthToken, name: str, kind: Kind) -> None:
    """Raise Forbidden unless `token` may make a deploy of `kind` to deployment `name`."""
    role, action = KIND_ROLES[kind]
    access.check_role(token, role, action)
    access.check_deployment(token, name)


def check_deploy_allowed(session: Session, token: AuthToken, name: str, kind: Kind) -> None:
    """Everything a deploy of `kind` to `name` would be refused for before its blobs matter.

    Clients ask this (with the missing-blobs question) before uploading, so a deploy that
    would be refused stores nothing.
    """
    check_may_deploy(token, name, kind)
    deployment = get_deployment(session, name)
    guard.check_direct_change(token, deployment, "direct deploys")
    _check_dag_deploys(deployment, kind)


def commit_deploy(
    session: Session, token: AuthToken, name: str, request: DeployRequest, max_files: int
) -> Deploy:
    """Append the deploy ``request`` asks for; each manifest holds at most ``max_files``."""
    check_may_deploy(token, name, request.kind)
    _check_s3_origin(request)
    # Validate before taking the lock: hashing a large manifest should not hold it.
    dags_given, project_given = _given(request, max_files)

    deployment = get_deployment(session, name, lock=True)
    guard.check_direct_change(token, deployment, "direct deploys")
    _check_dag_deploys(deployment, request.kind)
    check_expected_seq(deployment, request.expect_seq)
    current = current_deploy(session, deployment)
    current_dags = current.dags_version if current else None
    current_project = current.project_version if current else None
    dags = _resolve(session, dags_given, current_dags, "dags", max_files)
    project = _resolve(session, project_given, current_project, "project", max_files)
    if dags is not None:
        guard.check_removals(
            session,
            deployment,
            current_dags,
            dags,
            allow_empty=request.allow_empty,
            allow_removals=request.allow_removals,
        )
    check_blobs(session, [e for tree in (dags, project) if tree for e in tree.new_entries()])

    return append_deploy(
        session,
        deployment,
        kind=request.kind,
        origin=request.origin,
        dags_version=_version(session, dags, current_dags),
        project_version=_version(session, project, current_project),
        token_id=token.id,
        uploaded_files=request.uploaded_files,
        uploaded_bytes=request.uploaded_bytes,
        git_sha=request.git_sha,
        git_branch=request.git_branch,
        git_author=request.git_author,
        git_message=request.git_message,
        git_dirty=request.git_dirty,
        description=request.description,
        checks=request.checks.model_dump(),
        s3_source=request.s3_source.model_dump(mode="json") if request.s3_source else None,
    )


def _check_s3_origin(request: DeployRequest) -> None:
    """Origin s3 is what `dagship s3 sync` sends: a DAG-only deploy that says which bucket and
    prefix it mirrors. Both or neither, so an s3 deploy always names its source."""
    if request.origin == Origin.S3 and request.s3_source is None:
        raise Invalid("origin s3 needs s3_source (the bucket and prefix deployed)")
    if request.s3_source is not None and request.origin != Origin.S3:
        raise Invalid(f"s3_source is only for origin s3, not {request.origin}")
    if request.origin == Origin.S3 and request.kind != Kind.DAGS:
        raise Invalid(f"a deploy of origin s3 carries DAGs only (kind dags), not {request.kind}")


def _check_dag_deploys(deployment: Deployment, kind: Kind) -> None:
    if not deployment.dag_deploys and kind != Kind.FULL:
        raise Conflict(
            f"deployment {deployment.name} has DAG deploys disabled, so every deploy must be "
            "full (DAGs and project together)",
            code=ErrorCode.DAG_DEPLOYS_DISABLED,
            deployment=deployment.name,
        )


def check_blobs(session: Session, entries: list[ManifestEntry]) -> None:
    """Every entry's blob must be stored, with the size the entry says."""
    sizes = stored_sizes(session, [entry.sha256 for entry in entries])
    missing = list(dict.fromkeys(e.sha256 for e in entries if e.sha256 not in sizes))
    if missing:
        raise Invalid(
            f"{len(missing)} blob(s) are not uploaded yet (first: {missing[0]}); upload them "
            "with PUT /api/v1/blobs/{digest}, then commit the deploy again",
            code=ErrorCode.MISSING_BLOBS,
            missing=missing,
        )
    wrong = [e for e in entries if sizes[e.sha256] != e.size]
    if wrong:
        first = wrong[0]
        raise Invalid(
            f"{first.path} says size {first.size} but blob {first.sha256} has "
            f"{sizes[first.sha256]} bytes",
            code=ErrorCode.SIZE_MISMATCH,
            paths=[e.path for e in wrong],
        )


def check_still_stored(session: Session, source: Deploy) -> None:
    """A deploy copied from an earlier one (rollback, promote, preview) uploads nothing, so
    every blob of that one must still be held: `dagship server gc` deletes those of deploys
    past retention."""
    gone = session.scalars(
        select(ManifestFile.digest)
        .where(
            ManifestFile.version.in_([source.dags_version, source.project_version]),
            ~exists().where(Blob.digest == ManifestFile.digest),
        )
        .limit(MAX_GONE_LISTED)
    ).all()
    if gone:
        raise Conflict(
            f"deploy #{source.seq} of {source.deployment.name} needs {len(gone)} blob(s) the "
            f"server no longer holds (first: {gone[0]}), deleted by `dagship server gc` past "
            "retention: deploy that code again from its source instead",
            code=ErrorCode.MISSING_BLOBS,
            missing=list(gone),
        )


def check_expected_seq(deployment: Deployment, expect_seq: int | None) -> None:
    if expect_seq is not None and expect_seq != deployment.current_seq:
        raise Conflict(
            f"deployment {deployment.name} is at seq {deployment.current_seq}, not the expected "
            f"seq {expect_seq}: someone deployed in between",
            code=ErrorCode.SEQ_CONFLICT,
            current_seq=deployment.current_seq,
            deployment=deployment.name,
        )


def append_deploy(session: Session, deployment: Deployment, **fields: Any) -> Deploy:
    """Add the next deploy of a deployment locked by the caller and make it current."""
    previous = current_deploy(session, deployment)
    removed = guard.count_removed(
        session, previous.dags_version if previous else None, fields["dags_version"]
    )
    seq = deployment.current_seq + 1
    deploy = Deploy(
        id="dpl_" + secrets.token_hex(8),
        deployment_id=deployment.id,
        seq=seq,
        created_at=utcnow(),
        dags_removed=removed,
        **fields,
    )
    session.add(deploy)
    deployment.current_seq = seq
    session.flush()
    changes.announce(session, deployment.name)
    return deploy


def append_copy(
    session: Session,
    deployment: Deployment,
    source: Deploy,
    *,
    kind: Kind,
    token_id: str,
    description: str | None,
) -> Deploy:
    """Add a deploy of exactly ``source``'s versions, from another deployment, uploading
    nothing: the code is the source's, so is the commit it was built from."""
    check_still_stored(session, source)
    return append_deploy(
        session,
        deployment,
        kind=kind,
        origin=Origin.PROMOTE,
        dags_version=source.dags_version,
        project_version=source.project_version,
        token_id=token_id,
        uploaded_files=0,
        uploaded_bytes=0,
        git_sha=source.git_sha,
        git_branch=source.git_branch,
        git_author=source.git_author,
        git_message=source.git_message,
        git_dirty=source.git_dirty,
        description=description,
        source_deploy_id=source.id,
        source_deployment=source.deployment.name,
        source_seq=source.seq,
    )


def get_deploy(session: Session, deploy_id: str, reader: AuthToken) -> Deploy:
    deploy = session.get(Deploy, deploy_id)
    if deploy is None:
        raise NotFound(f"deploy {deploy_id} does not exist")
    access.check_deployment(reader, deploy.deployment.name)
    return deploy


def get_deploy_by_seq(session: Session, deployment: Deployment, seq: int) -> Deploy:
    deploy = session.scalar(
        select(Deploy).where(Deploy.deployment_id == deployment.id, Deploy.seq == seq)
    )
    if deploy is None:
        raise NotFound(f"deployment {deployment.name} has no deploy {seq}")
    return deploy


def list_deploys(session: Session, name: str, limit: int) -> list[Deploy]:
    deployment = get_deployment(session, name)
    query = (
        select(Deploy)
        .where(Deploy.deployment_id == deployment.id)
        .order_by(Deploy.seq.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def diff_deploys(session: Session, old: Deploy, new: Deploy) -> tuple[TreeDiff, TreeDiff]:
    """What changed in the DAGs and in the project from `old` to `new`."""
    return (
        _diff_versions(session, old.dags_version, new.dags_version),
        _diff_versions(session, old.project_version, new.project_version),
    )


def _diff_versions(session: Session, old: str, new: str) -> TreeDiff:
    if old == new:
        return TreeDiff([], [], [])
    return diff(load_manifest(session, old), load_manifest(session, new))


def _given(
    request: DeployRequest, max_files: int
) -> tuple[trees.Requested | None, trees.Requested | None]:
    """The DAG and project manifests (or deltas) ``request`` gives, each checked alone."""
    kind = request.kind
    dags = trees.requested(
        request.dags_manifest, request.dags_delta, "dags", kind in (Kind.DAGS, Kind.FULL), max_files
    )
    project = trees.requested(
        request.project_manifest,
        request.project_delta,
        "project",
        kind in (Kind.PROJECT, Kind.FULL),
        max_files,
    )
    return dags, project


def _resolve(
    session: Session,
    given: trees.Requested | None,
    current: str | None,
    tree: str,
    max_files: int,
) -> trees.NewTree | None:
    return None if given is None else trees.resolve(session, given, current, tree, max_files)


def _version(session: Session, tree: trees.NewTree | None, carried: str | None) -> str:
    if tree is not None:
        return store_manifest(session, tree.manifest, tree.delta)
    if carried is not None:
        return carried
    # Nothing to carry forward yet: the other tree starts out empty.
    return store_manifest(session, Manifest())
