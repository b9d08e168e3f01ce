"""Following a deploy in its deployment's Airflow, through Airflow's REST API (v2).

A deploy's DAG version is *picked up* once Airflow reports it: a DAG of the deployment's bundle
has ``bundle_version`` equal to it, or a file the deploy changed has an import error recorded
after the deploy. It is *parsed* once every DAG file the deploy added or changed (Python files,
outside ``.airflowignore``, that pass Airflow's "mentions airflow and dag" heuristic) has a DAG
at that version or an import error recorded after the deploy; a changed file that defines no
DAG at all counts as parsed ``settle_seconds`` after the pick-up (twelve times that for a file
that seems to build a DAG, ``DAG(`` or ``@dag``, which a busy Airflow may simply not have
reached yet). Unchanged DAG files that import a module the deploy added, changed or removed,
or name a file of the bundle it changed (``"sql/report.sql"``: Airflow pins new DAG runs to the
version of the DAG's last parse), are *importers* (core.imports), awaited the same way: their
import errors from before the deploy are about the previous module. Other unchanged files have
the same content and the same imports, so Airflow's earlier result stands for them (their
import errors still count). DAG files the deploy removed must be gone from Airflow too: their
DAGs stale, absent or now defined by another file (``_lingering``); a deploy that only removes
files has nothing to parse, and this is how its wait sees Airflow switch to it. *Failed* is
parsed with import errors in files of the version.

Once a version is picked up, the server asks Airflow (``PUT /parseDagFile/{file_token}``) to
parse the awaited files that already have DAGs right away, once per deploy; what it did is
remembered in memory, so a second server process may ask again, which is harmless.

The answer lists the DAG ids of the version: those parsed at it, plus those of unchanged files.
Listing every DAG of a bundle takes one REST call per 100 DAGs (about a second for 1,000), so the
server remembers, per bundle, the DAG ids Airflow showed for each file content (path and digest)
when a wait ended, and lists again only when an unchanged file's content is not remembered.
Unchanged files have the same content, so what Airflow made of them before stands.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pathspec
from cachetools import LRUCache
from sqlalchemy import select
from sqlalchemy.orm import Session

from dagship.airflow_api.client import JSON, AirflowClient, AirflowError
from dagship.core import imports
from dagship.core.manifest import Manifest
from dagship.core.schemas import AirflowFilesOut, DeployAirflowOut, ImportErrorOut
from dagship.core.vocabulary import AirflowState
from dagship.server.db.models import Deploy
from dagship.server.secret_box import SecretBox
from dagship.server.services import agents, airflow_access, deploys
from dagship.server.services.access import AuthToken
from dagship.server.services.airflow_access import Target
from dagship.server.services.manifests import load_manifest
from dagship.server.settings import AirflowAuth
from dagship.server.store import BlobStore

log = logging.getLogger("dagship.server")
SETTLE_SECONDS = 10.0
# How much is remembered (least recently used first out): deploys followed, file digests
# checked for DAGs, and file contents whose DAG ids Airflow showed.
_REMEMBERED = 2000
_REMEMBERED_DIGESTS = 100_000
_REMEMBERED_FILES = 200_000
_HEURISTIC_BYTES = 4 * 1024 * 1024
_MENTIONS_DAG = 1
_DEFINES_DAG = 2
# `DAG(...)`, `with DAG(`, `@dag` (lower-cased), but not `make_dag(`.
_BUILDS_DAG = re.compile(rb"(?<![\w])dag\s*\(|@dag\b")
# A file that seems to build a DAG but shows none is given this many times the settle time
# before it counts as a DAG factory that defines none (a busy Airflow parses slowly).
DEFINES_SETTLE_FACTOR = 12
# Threads asking Airflow for the import errors while the same answer lists the DAGs.
_READ_THREADS = 4
# Up to this many DAGs of removed files are asked for one by one; more, by listing the bundle.
_FEW_DAGS = 20
# The bundle's root ignore file, as Airflow reads it.
_IGNORE_FILE = ".airflowignore"


@dataclass(frozen=True)
class _Files:
    """What a deploy changed, worked out from its manifests alone."""

    # Every file of the version, and of the previous DAG version: path -> sha256.
    digests: dict[str, str]
    before: dict[str, str]
    # DAG files added or changed since the deploy's previous DAG version.
    changed: tuple[str, ...]
    # Unchanged DAG files that import a module the deploy added, changed or removed, or name a
    # file that it changed (core.imports).
    importers: tuple[str, ...]
    # Those of both that seem to build a DAG: they must show a DAG or an import error.
    defines: frozenset[str]
    # DAG files of the previous DAG version that are none in this one (removed, excluded by
    # its .airflowignore, or no longer naming a DAG): Airflow must stop listing their DAGs.
    removed: tuple[str, ...] = ()


@dataclass
class _Tracking:
    files: _Files | None = None
    picked_up_at: float | None = None
    reparse_requested: list[str] = field(default_factory=list)
    reparse_done: bool = False
    # The DAG ids Airflow listed for each removed file (see _lingering), once learned; the
    # entries of files whose DAGs are gone are dropped.
    removed_dags: dict[str, tuple[str, ...]] | None = None
    # Every DAG id of the removed files, gone ones included (the answer's ``removed_dags``).
    removed_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Plan:
    """What a deploy asks of Airflow: its files (as in ``_Files``) and its deployment now."""

    deploy_id: str
    seq: int
    deployment: str
    version: str
    created_at: datetime
    # The deployment's Airflow URL, as shown; ``target`` is where and how the server asks.
    airflow_url: str | None
    bundle_name: str
    current: bool
    paths: frozenset[str]
    digests: dict[str, str]
    before: dict[str, str]
    changed: tuple[str, ...]
    importers: tuple[str, ...]
    defines: frozenset[str]
    target: Target = field(default_factory=lambda: Target(None, AirflowAuth()))
    removed: tuple[str, ...] = ()

    @property
    def awaited(self) -> tuple[str, ...]:
        """The DAG files Airflow must parse at the version: changed ones and importers."""
        return self.changed + self.importers


class AirflowFollower:
    """Airflow clients (one per URL) and what was observed per deploy; one per server.

    ``transport`` (tests) replaces the HTTP transport of every Airflow client.
    """

    def __init__(
        self,
        auth: AirflowAuth,
        secrets: SecretBox | None = None,
        settle_seconds: float = SETTLE_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # The server's DAGSHIP_AIRFLOW_* credentials, and the key of deployments' own.
        self.auth = auth
        self.secrets = secrets
        self.settle_seconds = settle_seconds
        self._transport = transport
        # One client per URL and credentials: a client keeps the JWT it logged in for.
        self._clients: dict[tuple[str, AirflowAuth], AirflowClient] = {}
        # The caches are not thread-safe: every use holds the lock.
        self._tracking: LRUCache[str, _Tracking] = LRUCache(_REMEMBERED)
        self._heuristic: LRUCache[str, int] = LRUCache(_REMEMBERED_DIGESTS)
        # (bundle, path, sha256) -> the DAG ids Airflow showed for that file content.
        self._file_dags: LRUCache[tuple[str, str, str], tuple[str, ...]] = LRUCache(
            _REMEMBERED_FILES
        )
        # (path, sha256) -> the modules that file content imports.
        self._imports: LRUCache[tuple[str, str], frozenset[str]] = LRUCache(_REMEMBERED_FILES)
        self._lock = threading.Lock()
        # Reads one answer needs from Airflow at once (see _read_version).
        self.pool = ThreadPoolExecutor(_READ_THREADS, thread_name_prefix="airflow-read")

    def client(self, url: str, auth: AirflowAuth) -> AirflowClient:
        key = (url, auth)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = AirflowClient(
                    url,
                    username=auth.username,
                    password=auth.password,
                    token=auth.token,
                    transport=self._transport,
                )
            return self._clients[key]

    def tracking(self, deploy_id: str) -> _Tracking:
        with self._lock:
            found = self._tracking.get(deploy_id)
            if found is None:
                found = self._tracking[deploy_id] = _Tracking()
            return found

    def might_contain_dag(self, store: BlobStore, digest: str) -> bool:
        """Airflow's own test: a file that mentions both "airflow" and "dag" is parsed."""
        return self._dag_level(store, digest) >= _MENTIONS_DAG

    def defines_dag(self, store: BlobStore, digest: str) -> bool:
        """Whether the file seems to build a DAG (``DAG(`` or ``@dag``), not just name one."""
        return self._dag_level(store, digest) >= _DEFINES_DAG

    def _dag_level(self, store: BlobStore, digest: str) -> int:
        with self._lock:
            known = self._heuristic.get(digest)
        if known is not None:
            return known
        data = b"".join(_limited(store, digest)).lower()
        found = 0
        if b"airflow" in data and b"dag" in data:
            found = _DEFINES_DAG if _BUILDS_DAG.search(data) else _MENTIONS_DAG
        with self._lock:
            self._heuristic[digest] = found
        return found

    def imports(self, store: BlobStore, path: str, digest: str) -> frozenset[str]:
        """The modules the file ``path`` with content ``digest`` imports (core.imports)."""
        with self._lock:
            known = self._imports.get((path, digest))
        if known is not None:
            return known
        found = imports.references(b"".join(_limited(store, digest)), path)
        with self._lock:
            self._imports[(path, digest)] = found
        return found

    def known_dags(self, bundle: str, files: dict[str, str]) -> dict[str, tuple[str, ...]] | None:
        """The remembered DAG ids of each file (path -> sha256), or None if one is unknown."""
        with self._lock:
            found = {}
            for path, digest in files.items():
                ids = self._file_dags.get((bundle, path, digest))
                if ids is None:
                    return None
                found[path] = ids
            return found

    def remember_dags(self, bundle: str, files: dict[str, str], dags: dict[str, list[str]]) -> None:
        """Remember that Airflow showed ``dags[path]`` (none if absent) for each file content."""
        with self._lock:
            for path, digest in files.items():
                self._file_dags[(bundle, path, digest)] = tuple(sorted(dags.get(path, ())))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()


def deploy_status(
    session: Session,
    deploy_id: str,
    reader: AuthToken,
    store: BlobStore,
    follower: AirflowFollower,
) -> DeployAirflowOut:
    """Where deploy ``deploy_id`` is: on the deployment's agents when it changes the project
    (services/agents.py), then in its Airflow (asked now, on demand)."""
    deploy = deploys.get_deploy(session, deploy_id, reader)
    plan = _plan(session, deploy, store, follower)
    rollout = agents.rollout(session, deploy)
    # The rest depends on Airflow only: end the read transaction before talking to it.
    session.rollback()
    if rollout.state is not None:
        status = _out(plan, rollout.state, detail=rollout.detail)
    else:
        status = _dag_status(plan, follower)
    return status.model_copy(
        update={
            "project_changed": rollout.changed,
            "project_version": rollout.version,
            "agents": rollout.agents,
        }
    )


def _dag_status(plan: _Plan, follower: AirflowFollower) -> DeployAirflowOut:
    """What the deployment's Airflow made of the deploy's DAG version."""
    if plan.target.problem is not None:
        return _out(plan, AirflowState.NO_AIRFLOW, detail=plan.target.problem)
    if plan.target.url is None:
        return _out(
            plan,
            AirflowState.NO_AIRFLOW,
            detail=f"deployment {plan.deployment} has no Airflow URL",
        )
    try:
        return _observe(plan, follower)
    except AirflowError as exc:
        # What Airflow answered stays in the server's log: the answer is read by anyone who
        # may read the deploy, and a URL's answer is not theirs to see.
        if exc.remote_detail:
            log.warning("Airflow of deployment %s: %s: %s", plan.deployment, exc, exc.remote_detail)
        return _out(
            plan,
            AirflowState.WAITING,
            reachable=False,
            detail=f"the Airflow of deployment {plan.deployment}: {exc}",
        )


def _plan(session: Session, deploy: Deploy, store: BlobStore, follower: AirflowFollower) -> _Plan:
    deployment = deploy.deployment
    tracking = follower.tracking(deploy.id)
    if tracking.files is None:
        # History is append-only: what a deploy changed is worked out once per server.
        tracking.files = _files(session, deploy, store, follower)
    files = tracking.files
    target = airflow_access.target(session, deployment, follower.auth, follower.secrets)
    return _Plan(
        deploy_id=deploy.id,
        seq=deploy.seq,
        deployment=deployment.name,
        version=deploy.dags_version,
        created_at=deploy.created_at,
        airflow_url=deployment.airflow_url,
        bundle_name=deployment.bundle_name,
        current=deployment.current_seq == deploy.seq,
        paths=frozenset(files.digests),
        digests=files.digests,
        before=files.before,
        changed=files.changed,
        importers=files.importers,
        defines=files.defines,
        target=target,
        removed=files.removed,
    )


def _files(session: Session, deploy: Deploy, store: BlobStore, follower: AirflowFollower) -> _Files:
    new = load_manifest(session, deploy.dags_version)
    # The previous DAG version: a project-only deploy carries its DAG version forward, so
    # look past deploys with the same one.
    previous = session.scalar(
        select(Deploy.dags_version)
        .where(
            Deploy.deployment_id == deploy.deployment_id,
            Deploy.seq < deploy.seq,
            Deploy.dags_version != deploy.dags_version,
        )
        .order_by(Deploy.seq.desc())
        .limit(1)
    )
    old = load_manifest(session, previous) if previous else Manifest()
    before = {entry.path: entry.sha256 for entry in old.entries}
    digests = {entry.path: entry.sha256 for entry in new.entries}
    ignored, ignored_before = _airflowignore(new, store), _airflowignore(old, store)
    # Only then can a file whose content is the same be new to Airflow, or gone from it.
    ignore_changed = before.get(_IGNORE_FILE) != digests.get(_IGNORE_FILE)

    def dag_file(path: str) -> bool:
        return (
            path.endswith(".py")
            and not ignored(path)
            and follower.might_contain_dag(store, digests[path])
        )

    # Changed, or new to Airflow: added, or excluded by the previous .airflowignore.
    changed = tuple(
        path
        for path, sha in digests.items()
        if (before.get(path) != sha or (ignore_changed and ignored_before(path))) and dag_file(path)
    )
    found = imports.importers(
        digests, before, lambda path: follower.imports(store, path, digests[path])
    )
    importers = tuple(path for path in sorted(found - set(changed)) if dag_file(path))
    # DAG files before that are none now: removed, excluded, or no longer naming a DAG.
    removed = tuple(
        sorted(
            path
            for path, sha in before.items()
            if path.endswith(".py")
            and (digests.get(path) != sha or ignore_changed)
            and not (path in digests and dag_file(path))
            and not ignored_before(path)
            and follower.might_contain_dag(store, sha)
        )
    )
    return _Files(
        digests=digests,
        before=before,
        changed=changed,
        importers=importers,
        defines=frozenset(
            path for path in changed + importers if follower.defines_dag(store, digests[path])
        ),
        removed=removed,
    )


@dataclass(frozen=True)
class _Seen:
    """What Airflow shows for a deploy's DAG version, read in one go."""

    # DAGs of the bundle parsed at the version.
    at_version: list[JSON]
    # Import errors of the version's files (see _version_errors).
    errors: list[dict[str, str]]
    # Changed files with an import error recorded after the deploy.
    failed_files: set[str]
    # Changed files with neither a DAG at the version nor such an error, sorted.
    pending: list[str]


def _observe(plan: _Plan, follower: AirflowFollower) -> DeployAirflowOut:
    """Ask Airflow where the deploy is, then answer: picked up, parsed, failed..."""
    client = follower.client(plan.target.url or "", plan.target.auth)
    tracking = follower.tracking(plan.deploy_id)
    seen = _read_version(client, plan, follower.pool)
    picked_up_at = _note_pick_up(tracking, seen)
    pending = seen.pending
    if picked_up_at is not None and pending:
        _reparse_once(client, plan, pending, tracking, follower)
        since_pickup = time.monotonic() - picked_up_at
        pending = _settle(client, plan, pending, since_pickup, follower.settle_seconds)
    lingering = _lingering(client, plan, tracking, follower) if plan.removed else {}
    files = _files_out(plan, pending, lingering)
    state, detail = _state(plan, seen, picked_up_at is not None, files, lingering)
    dags: list[str] = []
    if state in (AirflowState.PARSED, AirflowState.FAILED):
        dags = _dags_of_version(client, plan, seen.at_version, seen.failed_files, follower)
    return _out(
        plan,
        state,
        detail=detail,
        dags=dags,
        errors=seen.errors,
        files=files,
        reparse_requested=tracking.reparse_requested,
        removed_dags=list(tracking.removed_ids) if state.done else [],
    )


def _read_version(client: AirflowClient, plan: _Plan, pool: ThreadPoolExecutor) -> _Seen:
    """The DAGs parsed at the version, the import errors of its files, what is pending.

    The two lists are asked for at once: ``deploy --wait`` polls this, and its last answer,
    the one that sees the parse, comes one Airflow round trip sooner.
    """
    asked = pool.submit(client.import_errors, plan.bundle_name)
    try:
        at_version = client.dags(plan.bundle_name, plan.version)
    finally:
        # Its AirflowError, if any, is raised here when the DAGs' was not.
        items = asked.result()
    parsed_files = {str(dag.get("relative_fileloc")) for dag in at_version}
    errors = _version_errors(items, plan)
    awaited = set(plan.awaited)
    failed_files = {error["filename"] for error in errors if error["filename"] in awaited}
    pending = sorted(awaited - parsed_files - failed_files)
    return _Seen(at_version, errors, failed_files, pending)


def _note_pick_up(tracking: _Tracking, seen: _Seen) -> float | None:
    """When Airflow was first seen to have picked up the version (None: not yet).

    Picked up: a DAG parsed at the version, or an import error in an awaited file since the
    deploy; once seen, it stays picked up.
    """
    if tracking.picked_up_at is None and (seen.at_version or seen.failed_files):
        tracking.picked_up_at = time.monotonic()
    return tracking.picked_up_at


def _reparse_once(
    client: AirflowClient,
    plan: _Plan,
    pending: list[str],
    tracking: _Tracking,
    follower: AirflowFollower,
) -> None:
    """Ask Airflow to parse the pending files now, the first time they are found pending."""
    if not tracking.reparse_done:
        tracking.reparse_done = True
        tracking.reparse_requested = _request_reparse(client, plan, pending, follower)


def _settle(
    client: AirflowClient,
    plan: _Plan,
    pending: list[str],
    since_pickup: float,
    settle_seconds: float,
) -> list[str]:
    """The pending files still awaited once the settle time has passed since the pick-up.

    Files that define no DAG (helpers that mention airflow and dag) never show up in the DAG
    list: after the settle time, a pending file without any DAG counts as parsed, unless it
    seems to build one (then it has not been parsed yet: wait up to DEFINES_SETTLE_FACTOR
    times longer).
    """
    if since_pickup < settle_seconds:
        return pending
    with_dags = {str(dag.get("relative_fileloc")) for dag in client.dags(plan.bundle_name)}
    patient = since_pickup < settle_seconds * DEFINES_SETTLE_FACTOR
    return [path for path in pending if path in with_dags or (patient and path in plan.defines)]


def _state(
    plan: _Plan,
    seen: _Seen,
    picked_up: bool,
    files: AirflowFilesOut,
    lingering: dict[str, tuple[str, ...]],
) -> tuple[AirflowState, str]:
    """The deploy's state in Airflow and the detail that explains it."""
    if (files.pending or lingering) and not plan.current:
        return AirflowState.SUPERSEDED, (
            f"deploy #{plan.seq} is no longer the current deploy of {plan.deployment} and "
            "Airflow had not parsed it"
        )
    if not plan.awaited:
        if lingering:
            return AirflowState.WAITING, (
                f"Airflow has not picked up {plan.version} yet: it still lists "
                f"{_lingering_words(lingering)}"
            )
        return (
            AirflowState.FAILED if seen.errors else AirflowState.PARSED,
            "no DAG file was added or changed in this version, nor imports a changed module or "
            "names a changed file, "
            "so Airflow has nothing new to parse; unchanged files keep what Airflow made of them"
            + ("; the DAGs of the removed files are gone" if plan.removed else ""),
        )
    if not picked_up:
        return AirflowState.WAITING, f"Airflow has not picked up {plan.version} yet"
    if files.pending:
        return AirflowState.PICKED_UP, (
            f"Airflow is parsing: {files.parsed} of {files.expected} {_awaited_words(plan)} done"
        )
    if seen.errors:
        return AirflowState.FAILED, (
            f"{len(seen.errors)} file(s) of this version fail to import in Airflow"
        )
    if lingering:
        return AirflowState.PICKED_UP, (
            f"Airflow parsed all {files.expected} {_awaited_words(plan)} and still lists "
            f"{_lingering_words(lingering)}"
        )
    return AirflowState.PARSED, f"Airflow parsed all {files.expected} {_awaited_words(plan)}"


def _lingering_words(lingering: dict[str, tuple[str, ...]]) -> str:
    """E.g. "DAG etl of etl.py (removed in this version)"."""
    shown = [f"{', '.join(ids)} of {path}" for path, ids in sorted(lingering.items())[:5]]
    more = f" and {len(lingering) - 5} more files" if len(lingering) > 5 else ""
    dags = sum(len(ids) for ids in lingering.values())
    noun = "DAG" if dags == 1 else "DAGs"
    return f"{noun} {'; '.join(shown)}{more} (removed in this version)"


def _awaited_words(plan: _Plan) -> str:
    """What the awaited files are, for a detail: changed DAG files, and importers if any."""
    if plan.importers:
        return "changed DAG files and DAG files that import a changed module or name a changed file"
    return "changed DAG files"


def _files_out(
    plan: _Plan, pending: list[str], lingering: dict[str, tuple[str, ...]] | None = None
) -> AirflowFilesOut:
    expected = len(plan.awaited)
    return AirflowFilesOut(
        expected=expected,
        parsed=expected - len(pending),
        pending=pending,
        importers=list(plan.importers),
        removed=list(plan.removed),
        lingering=sorted(lingering or ()),
    )


def _lingering(
    client: AirflowClient, plan: _Plan, tracking: _Tracking, follower: AirflowFollower
) -> dict[str, tuple[str, ...]]:
    """The removed DAG files whose DAGs Airflow still lists: path -> DAG ids.

    Airflow drops (marks stale) the DAGs of a file that is gone from the bundle when its DAG
    processor lists the new version's files: until then the deploy is not live. The DAG ids of
    the removed files are those remembered for their content, else listed once; then each is
    asked for by id (or, for many, the bundle is listed again) until none is left.
    """
    if tracking.removed_dags is None:
        files = {path: plan.before[path] for path in plan.removed}
        known = follower.known_dags(plan.bundle_name, files)
        if known is None:
            listed = _dags_by_file(client, plan.bundle_name)
            known = {path: listed.get(path, ()) for path in plan.removed}
        tracking.removed_dags = {path: ids for path, ids in known.items() if ids}
        tracking.removed_ids = tuple(sorted({i for ids in known.values() for i in ids}))
    asked = tracking.removed_dags
    if sum(len(ids) for ids in asked.values()) > _FEW_DAGS:
        listed = _dags_by_file(client, plan.bundle_name)
        still = {path: listed.get(path, ()) for path in asked}
    else:
        still = {
            path: tuple(i for i in ids if _still_from(client.dag(i), plan.bundle_name, path))
            for path, ids in asked.items()
        }
    tracking.removed_dags = {path: ids for path, ids in still.items() if ids}
    return tracking.removed_dags


def _still_from(dag: JSON | None, bundle_name: str, path: str) -> bool:
    """Whether Airflow still lists ``dag`` as defined by file ``path`` of the bundle (not a DAG
    it no longer has, marked stale, or now defined by another file)."""
    return (
        dag is not None
        and not dag.get("is_stale")
        and dag.get("bundle_name", bundle_name) == bundle_name
        and dag.get("relative_fileloc") == path
    )


def _version_errors(items: list[dict[str, Any]], plan: _Plan) -> list[dict[str, str]]:
    """Import errors of files in this version; for awaited files (changed ones and importers),
    only ones recorded after the deploy (older ones are about the previous content, or the
    previous content of a module the file imports)."""
    awaited = set(plan.awaited)
    found = []
    for item in items:
        filename = str(item.get("filename") or "")
        if filename not in plan.paths:
            continue
        stamp = _time(item.get("timestamp"))
        if filename in awaited and (stamp is None or stamp < plan.created_at):
            continue
        found.append(
            {
                "filename": filename,
                "stack_trace": str(item.get("stack_trace") or ""),
                "timestamp": str(item.get("timestamp") or ""),
            }
        )
    return sorted(found, key=lambda error: error["filename"])


def _request_reparse(
    client: AirflowClient, plan: _Plan, pending: list[str], follower: AirflowFollower
) -> list[str]:
    """Ask Airflow to parse the pending files that already have DAGs (a file token needs a
    DAG); new files are found by the bundle refresh. Best effort: returns the files asked."""
    before = {path: plan.before[path] for path in pending if path in plan.before}
    known = follower.known_dags(plan.bundle_name, before)
    if known is None:
        known = _dags_by_file(client, plan.bundle_name)
    asked = []
    for path in sorted(before):
        ids = known.get(path)
        if not ids:
            continue
        try:
            client.reparse(str(client.dag_details(ids[0])["file_token"]))
        except (AirflowError, KeyError):
            continue
        asked.append(path)
    return asked


def _dags_by_file(client: AirflowClient, bundle_name: str) -> dict[str, tuple[str, ...]]:
    """Every DAG of the bundle, by file (one REST call per 100 DAGs)."""
    found: dict[str, list[str]] = {}
    for dag in client.dags(bundle_name):
        found.setdefault(str(dag.get("relative_fileloc")), []).append(str(dag["dag_id"]))
    return {path: tuple(sorted(ids)) for path, ids in found.items()}


def _dags_of_version(
    client: AirflowClient,
    plan: _Plan,
    at_version: list[JSON],
    failed_files: set[str],
    follower: AirflowFollower,
) -> list[str]:
    """DAG ids the version defines: those parsed at it, and those of the other files (as
    remembered for their content, else as Airflow lists them now)."""
    awaited = set(plan.awaited)
    unchanged = {path: sha for path, sha in plan.digests.items() if path not in awaited}
    known = follower.known_dags(plan.bundle_name, unchanged)
    if known is None:
        listed = _dags_by_file(client, plan.bundle_name)
        known = {path: listed.get(path, ()) for path in unchanged}
    parsed: dict[str, list[str]] = {}
    for dag in at_version:
        parsed.setdefault(str(dag.get("relative_fileloc")), []).append(str(dag["dag_id"]))
    # The wait is over: every awaited file without an import error is parsed (or has no DAG).
    settled = {path: plan.digests[path] for path in awaited - failed_files}
    shown = {path: list(ids) for path, ids in known.items()} | parsed
    follower.remember_dags(plan.bundle_name, unchanged | settled, shown)
    found = {dag_id for ids in parsed.values() for dag_id in ids}
    found.update(dag_id for ids in known.values() for dag_id in ids)
    return sorted(found)


def _out(
    plan: _Plan,
    state: AirflowState,
    *,
    detail: str,
    reachable: bool = True,
    dags: list[str] | None = None,
    errors: list[dict[str, str]] | None = None,
    files: AirflowFilesOut | None = None,
    reparse_requested: list[str] | None = None,
    removed_dags: list[str] | None = None,
) -> DeployAirflowOut:
    return DeployAirflowOut(
        deploy_id=plan.deploy_id,
        seq=plan.seq,
        deployment=plan.deployment,
        dags_version=plan.version,
        airflow_url=plan.airflow_url,
        bundle_name=plan.bundle_name,
        state=state,
        done=state.done,
        reachable=reachable,
        dags=dags or [],
        import_errors=[ImportErrorOut(**error) for error in errors or []],
        files=files or _files_out(plan, sorted(plan.awaited)),
        reparse_requested=reparse_requested or [],
        removed_dags=removed_dags or [],
        detail=detail,
    )


def _airflowignore(manifest: Manifest, store: BlobStore) -> Any:
    """A predicate for paths the root ``.airflowignore`` excludes (glob syntax, Airflow 3's
    default; nested ignore files and regexp syntax are not applied)."""
    entry = manifest.by_path().get(_IGNORE_FILE)
    if entry is None:
        return lambda _path: False
    text = b"".join(_limited(store, entry.sha256)).decode("utf-8", errors="replace")
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    spec = pathspec.PathSpec.from_lines("gitwildmatch", [line for line in lines if line])
    return spec.match_file


def _limited(store: BlobStore, digest: str) -> list[bytes]:
    chunks, size = [], 0
    for chunk in store.read(digest):
        chunks.append(chunk)
        size += len(chunk)
        if size >= _HEURISTIC_BYTES:
            break
    return chunks


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
