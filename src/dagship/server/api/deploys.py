"""Deploy routes: commit, history, diff, rollback, and the current DAG and project versions."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dagship.core.schemas import (
    MAX_INLINE_BYTES,
    DagsCurrentOut,
    DeployAirflowOut,
    DeployOut,
    DeployRequest,
    DiffOut,
    ProjectCurrentOut,
    RollbackOut,
    RollbackRequest,
    TreeDiffOut,
)
from dagship.core.vocabulary import ErrorCode
from dagship.server import views
from dagship.server.db.engine import Database
from dagship.server.db.models import Deploy
from dagship.server.deps import (
    AirflowDep,
    CurrentToken,
    DatabaseDep,
    EventsDep,
    Operator,
    SessionDep,
    SettingsDep,
    StoreDep,
    Viewer,
    WriteSessionDep,
)
from dagship.server.errors import NotFound
from dagship.server.services import (
    airflow,
    deployments,
    deploys,
    inline,
    manifests,
    refs,
    rollback,
)
from dagship.server.services.access import AuthToken
from dagship.server.store.base import BlobStore

router = APIRouter(tags=["deploys"])
# Longest ?wait= for the current DAG or project version.
MAX_WAIT_SECONDS = 60.0


@router.post("/deployments/{name}/deploys", status_code=status.HTTP_201_CREATED)
def commit_deploy(
    name: str,
    body: DeployRequest,
    session: WriteSessionDep,
    token: CurrentToken,
    events: EventsDep,
    settings: SettingsDep,
) -> DeployOut:
    deploy = deploys.commit_deploy(session, token, name, body, settings.max_manifest_files)
    out = views.deploy_out(deploy)
    session.commit()
    events.notify()
    return out


@router.get("/deployments/{name}/deploys")
def list_deploys(
    name: str,
    session: SessionDep,
    _token: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> list[DeployOut]:
    return [views.deploy_out(deploy) for deploy in deploys.list_deploys(session, name, limit)]


@router.get("/deploys/{ref}")
def get_deploy(ref: str, session: SessionDep, token: Viewer) -> DeployOut:
    """One deploy, by any deploy reference: its id, NAME, NAME:SEQ or NAME~N."""
    return views.deploy_out(refs.resolve_ref(session, ref, token))


@router.get("/deploys/{deploy_id}/airflow")
def deploy_in_airflow(
    deploy_id: str, session: SessionDep, token: Viewer, store: StoreDep, follower: AirflowDep
) -> DeployAirflowOut:
    """What the deployment's Airflow made of this deploy's DAG version, asked now."""
    return airflow.deploy_status(session, deploy_id, token, store, follower)


@router.get("/deploys/{a}/diff/{b}")
def diff_deploys(a: str, b: str, session: SessionDep, token: Viewer) -> DiffOut:
    old, new = deploys.get_deploy(session, a, token), deploys.get_deploy(session, b, token)
    return _diff(session, old, new)


_REF = "A deploy reference: dev, dev:5, dev~1 or a deploy id."


@router.get("/diff")
def diff_refs(
    session: SessionDep,
    token: Viewer,
    old: Annotated[str, Query(alias="from", description=_REF)],
    new: Annotated[str, Query(alias="to", description=_REF)],
) -> DiffOut:
    """What changes from deploy `from` to deploy `to`, across deployments or within one."""
    before = refs.resolve_ref(session, old, token)
    after = refs.resolve_ref(session, new, token)
    return _diff(session, before, after)


def _diff(session: Session, old: Deploy, new: Deploy) -> DiffOut:
    dags, project = deploys.diff_deploys(session, old, new)
    return DiffOut(
        **{"from": views.deploy_out(old)},
        to=views.deploy_out(new),
        dags=TreeDiffOut(**dags.to_dict()),
        project=TreeDiffOut(**project.to_dict()),
    )


@router.post(
    "/deployments/{name}/rollback",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": RollbackOut, "description": "Already at the target's versions"}},
)
def rollback_deployment(
    name: str,
    body: RollbackRequest,
    response: Response,
    session: WriteSessionDep,
    token: Operator,
    events: EventsDep,
) -> RollbackOut:
    result = rollback.rollback(
        session,
        token,
        name,
        to_seq=body.to_seq,
        expect_seq=body.expect_seq,
        description=body.description,
    )
    out = RollbackOut(
        unchanged=result.unchanged,
        deploy=views.deploy_out(result.deploy),
        source=views.deploy_out(result.source),
    )
    session.commit()
    if result.unchanged:
        response.status_code = status.HTTP_200_OK
    else:
        events.notify()
    return out


WaitQuery = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="With If-None-Match: hold the request up to this many seconds until "
        "the version changes (304 if it did not).",
    ),
]
InlineQuery = Annotated[
    int,
    Query(
        alias="inline",
        ge=0,
        description="With If-None-Match naming a version: carry in the answer's `blobs` the "
        "content of the new version's blobs that version lacks, each whole, as many as fit in "
        f"this many bytes (at most {MAX_INLINE_BYTES}); 0: none, and no `blobs`.",
    ),
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match matches the current version"}
}


@router.get(
    "/deployments/{name}/dags/current", response_model=DagsCurrentOut, responses=NOT_MODIFIED
)
async def current_dags(
    name: str,
    database: DatabaseDep,
    events: EventsDep,
    store: StoreDep,
    token: Viewer,
    if_none_match: Annotated[str | None, Header()] = None,
    wait: WaitQuery = 0,
    inline_bytes: InlineQuery = 0,
) -> Response:
    """The current DAG version and its files: what every DAG bundle follows."""
    current = await _current(database, events, Tree(name, token, "dags"), if_none_match, wait)
    if inline_bytes and current.body is not None and not current.matches(if_none_match):
        current = await _with_inline(
            database, events, store, current, if_none_match, inline_bytes, token
        )
    return current.response(if_none_match)


@router.get(
    "/deployments/{name}/project/current",
    response_model=ProjectCurrentOut,
    responses=NOT_MODIFIED,
)
async def current_project(
    name: str,
    database: DatabaseDep,
    events: EventsDep,
    token: Viewer,
    if_none_match: Annotated[str | None, Header()] = None,
    wait: WaitQuery = 0,
) -> Response:
    """The current project version and its files: what every agent follows."""
    current = await _current(database, events, Tree(name, token, "project"), if_none_match, wait)
    return current.response(if_none_match)


@dataclass(frozen=True)
class Tree:
    """Which tree of which deployment a ``.../current`` request follows, and for whom."""

    deployment: str
    token: AuthToken
    kind: Literal["dags", "project"]

    def version(self, deploy: Deploy) -> str:
        return deploy.dags_version if self.kind == "dags" else deploy.project_version


async def _current(
    database: DatabaseDep, events: EventsDep, tree: Tree, if_none_match: str | None, wait: float
) -> Current:
    """Answer with the tree's current version, or 304 while it is still ``If-None-Match``
    (for up to ``wait`` seconds). While it waits it reads nothing: the deployment's next
    change wakes it (server/events.py), and it reads once more."""
    deadline = time.monotonic() + wait
    # Taken before the read, so a change committed after the read always wakes the wait.
    seen = events.generation(tree.deployment)
    current = await _read_or_recall(database, events, tree, if_none_match, wait, seen)
    while current.matches(if_none_match) and not events.stopping:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await events.wait(tree.deployment, seen, left)
        if events.stopping or events.generation(tree.deployment) == seen:
            break  # the wait ended, or the server is stopping, and nothing changed
        seen = events.generation(tree.deployment)
        # Every request this change woke shares one read, begun after the change was seen.
        key = (tree.deployment, tree.kind, seen)
        current = await events.shared(key, lambda: _read_after_wake(database, tree))
        events.remember(tree.deployment, tree.kind, seen, replace(current, body=None))
    return current


async def _read_or_recall(
    database: Database,
    events: EventsDep,
    tree: Tree,
    if_none_match: str | None,
    wait: float,
    seen: int,
) -> Current:
    """The tree's current version, read at generation ``seen`` or after.

    A held poll renewed with the version it has (every bundle, every LISTEN_SECONDS) is
    answered from the version last read at this generation, without the database: if that
    version is its own, it waits, and any change since wakes it to read. Polls that find
    nothing to recall share one read, as woken ones do. A request that does not wait, or
    whose version is not the one recalled, reads the database itself."""
    if wait > 0:
        known = events.recall(tree.deployment, tree.kind, seen)
        if known is not None and known.matches(if_none_match):
            return known
        if known is None:
            key = (tree.deployment, tree.kind, seen)
            current = await events.shared(key, lambda: _read_after_wake(database, tree))
            events.remember(tree.deployment, tree.kind, seen, replace(current, body=None))
            return current
    current = await run_in_threadpool(_current_tree, database, tree, if_none_match)
    events.remember(tree.deployment, tree.kind, seen, replace(current, body=None))
    return current


@dataclass(frozen=True)
class Current:
    """A tree's current version; ``body`` is None when the reader's ETag matched it."""

    deployment: str
    version: str
    deploy_id: str
    seq: int
    body: str | None
    # The JSON list of inline blobs (services/inline.py), when asked for.
    blobs: str | None = None

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def matches(self, if_none_match: str | None) -> bool:
        return bool(if_none_match) and _matches(if_none_match or "", self.etag)

    def response(self, if_none_match: str | None) -> Response:
        if self.matches(if_none_match) or self.body is None:
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": self.etag})
        return Response(self.payload, media_type="application/json", headers={"ETag": self.etag})

    @functools.cached_property
    def payload(self) -> bytes:
        """The 200 answer's body, encoded once for every request a change woke."""
        head = json.dumps(
            {
                "deployment": self.deployment,
                "version": self.version,
                "deploy_id": self.deploy_id,
                "seq": self.seq,
            }
        )
        blobs = f',"blobs":{self.blobs}' if self.blobs is not None else ""
        return f'{head[:-1]},"files":{self.body}{blobs}}}'.encode()


async def _read_after_wake(database: Database, tree: Tree) -> Current:
    return await run_in_threadpool(_current_tree, database, tree, None)


def _current_tree(database: Database, tree: Tree, if_none_match: str | None) -> Current:
    name = tree.deployment
    with database.read_session() as session:
        deployment = deployments.get_deployment(session, name)
        current = deployments.current_deploy(session, deployment)
        if current is None:
            raise NotFound(
                f"deployment {name} has no deploys yet", code=ErrorCode.NO_DEPLOYS, deployment=name
            )
        version = tree.version(current)
        found = Current(name, version, current.id, current.seq, None)
        # Polled by every DAG processor and agent: answer "unchanged" before touching the
        # manifest body.
        if found.matches(if_none_match):
            return found
        body = manifests.manifest_body(session, version, tree.token)
    return replace(found, body=body)


async def _with_inline(
    database: Database,
    events: EventsDep,
    store: BlobStore,
    current: Current,
    if_none_match: str | None,
    limit: int,
    token: AuthToken,
) -> Current:
    """``current`` with the blobs that the version If-None-Match names lacks (none if it
    names no version); every bundle a deploy woke had the same one, so they share one read."""
    base = inline.base_version(if_none_match)
    if base is None:
        return replace(current, blobs="[]")
    body = current.body
    assert body is not None

    def read() -> Current:
        # The blobs are read after the session closed: it holds a database connection.
        with database.read_session() as session:
            chosen = inline.new_blobs(session, body, base, token, limit)
        return replace(current, blobs=inline.encode_blobs(store, chosen))

    key = ("inline", current.deployment, current.version, base, limit, token.deployment_id)
    return await events.shared(key, lambda: run_in_threadpool(read))


def _matches(if_none_match: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates
