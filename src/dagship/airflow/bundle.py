"""DagshipDagBundle: an Airflow 3 DAG bundle that follows a dagship deployment.

Configured in ``[dag_processor] dag_bundle_config_list``::

    {"name": "dags", "classpath": "dagship.airflow.DagshipDagBundle",
     "kwargs": {"url": "http://dagship:8787", "deployment": "prod", "refresh_interval": 2}}

On disk, under the bundle's ``base_dir`` (docs/bundle.md explains why)::

    cache/ab/<sha256>        blobs, read-only, verified on arrival (hard-link sources)
    manifests/<version>.json manifests of the versions materialized here
    trees/<version>.<rand>/  the current tree, the one before it, and the spare the next
                             version's tree is made from (reuse.py)
    current -> trees/...     the DAG processor's stable path, switched with os.replace
    previous -> trees/...    the tree current pointed at before the last switch
    tmp/                     work in progress (cleared under the lock)
    versions/<version>/      exact versions for workers (``version=...``); Airflow's stale
                             bundle cleanup removes unused ones
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from airflow.dag_processing.bundles import base as airflow_bundles
from airflow.dag_processing.bundles.base import BaseDagBundle

from dagship.airflow.blobcache import BlobCache, BundleError
from dagship.airflow.listener import LISTEN_SECONDS, DeployListener
from dagship.airflow.reparse import parseable, request_reparse
from dagship.airflow.reuse import update
from dagship.airflow.tree import (
    BuildPlan,
    ManifestStore,
    build,
    matches,
    read_link,
    remove_tree,
    swap_link,
    unique_name,
    version_of,
)
from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core import imports
from dagship.core.manifest import (
    EMPTY_VERSION,
    Manifest,
    ManifestEntry,
    ManifestError,
    is_version,
)
from dagship.core.schemas import MAX_INLINE_BYTES

if TYPE_CHECKING:
    from dagship.core.schemas import DagsCurrentOut

log = logging.getLogger("dagship.airflow.bundle")

API_TIMEOUT_SECONDS = 10.0
# With a listener connected, refresh() still asks the server itself this often, and a failed
# refresh is retried after this pause (refresh() may run every loop of the DAG processor).
CHECK_SECONDS = 60.0
RETRY_SECONDS = 2.0
# Blobs no local version uses are deleted at most this often (seconds).
CACHE_GC_INTERVAL = 3600
# What a failed refresh can raise; anything else is a bug and propagates.
_REFRESH_ERRORS = (ApiError, BundleError, ManifestError, ValueError, OSError, httpx.HTTPError)
# Blobs that came in the current-version answer: (digest, content), checked on arrival.
Inline = list[tuple[str, bytes]]


def _bundle_version(version: str) -> Any:
    """What ``get_current_version`` returns: a ``BundleVersion`` on Airflow 3.3+ (a plain
    string is deprecated there), the version string on Airflow 3.0 to 3.2, which have none."""
    bundle_version = getattr(airflow_bundles, "BundleVersion", None)
    return version if bundle_version is None else bundle_version(version=version)


def _check_arguments(kwargs: dict[str, Any], **needed: str | None) -> None:
    """A BundleError naming an argument that neither DagshipDagBundle nor this Airflow's
    BaseDagBundle takes, or a needed one left out."""
    name = kwargs.get("name", "?")
    base = inspect.signature(BaseDagBundle.__init__).parameters.values()
    unknown = sorted(set(kwargs) - {p.name for p in base})
    # A BaseDagBundle taking **kwargs takes anything: it decides for itself.
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in base):
        raise BundleError(
            f"DAG bundle {name!r} does not take {', '.join(map(repr, unknown))}: check its "
            f"kwargs in [dag_processor] dag_bundle_config_list. DagshipDagBundle takes "
            f"{_named(DagshipDagBundle.__init__)}; Airflow's own are "
            f"{_named(BaseDagBundle.__init__)}"
        )
    missing = [key for key, value in needed.items() if not value]
    if missing:
        raise BundleError(
            f"DAG bundle {name!r} needs {' and '.join(map(repr, missing))} in its kwargs in "
            f"[dag_processor] dag_bundle_config_list, e.g. "
            f'{{"url": "http://dagship:8787", "deployment": "prod"}}'
        )


def _claims_force_refresh() -> bool:
    """Whether this Airflow's DAG processor refreshes a bundle in the loop that claims a
    priority parsing request for it, before parsing the file (3.3+): a request filed beside a
    prepared tree then brings the switch and the parse in one loop. Older ones may parse the
    file before they refresh, so the request is filed after the switch there."""
    try:
        from airflow.dag_processing.manager import DagFileProcessorManager
    except ImportError:
        return False
    return hasattr(DagFileProcessorManager, "request_bundle_refresh")


@dataclass
class _Prepared:
    """A new version's tree, built by the listener's thread beside the current one."""

    plan: BuildPlan
    name: str  # under trees/
    base: str  # the current tree it was built against
    filed: bool  # its files' priority parsing requests are filed


def _inline(body: DagsCurrentOut) -> Inline:
    return [(blob.sha256, blob.content) for blob in body.blobs]


def _named(function: Any) -> str:
    """The keyword arguments ``function`` takes by name."""
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(function).parameters.values()
    return ", ".join(p.name for p in params if p.kind in kinds and p.name != "self")


class DagshipDagBundle(BaseDagBundle):
    """A versioned DAG bundle fed by a dagship server.

    :param url: the dagship server, e.g. ``http://dagship:8787``
    :param deployment: the deployment whose DAG bundle to follow
    :param token_env: environment variable holding the API token (``DAGSHIP_API_TOKEN``)
    :param conn_id: an Airflow connection whose password is the token; used when set
    :param request_reparse: after a switch, ask the DAG processor to parse the added and
        changed files, and those that import a changed module or name a changed file, first
        (rows in ``dag_priority_parsing_request``)
    :param listen: keep a long poll open to the server (listener.py) so that a deploy is
        picked up at the next ``refresh()`` without asking the server on every call; the
        listener's thread also builds the new version's tree and files the parsing requests,
        so that ``refresh()`` only switches
    """

    supports_versioning = True

    def __init__(
        self,
        *,
        url: str | None = None,
        deployment: str | None = None,
        token_env: str = "DAGSHIP_API_TOKEN",
        conn_id: str | None = None,
        request_reparse: bool = True,
        listen: bool = True,
        **kwargs: Any,
    ) -> None:
        # Airflow passes its own (name, version) and the configured kwargs: a name neither we
        # nor BaseDagBundle take is a typo in dag_bundle_config_list, which must not pass.
        _check_arguments(kwargs, url=url, deployment=deployment)
        assert url is not None and deployment is not None
        super().__init__(**kwargs)
        self.url = url.rstrip("/")
        self.deployment = deployment
        self.token_env = token_env
        self.conn_id = conn_id
        self.request_reparse = request_reparse
        self.cache = BlobCache(self.base_dir / "cache")
        self.manifests = ManifestStore(self.base_dir / "manifests")
        self.trees_dir = self.base_dir / "trees"
        self.tmp_dir = self.base_dir / "tmp"
        self.current_link = self.base_dir / "current"
        self.previous_link = self.base_dir / "previous"
        self._client: ApiClient | None = None
        # BaseDagBundle.lock() excludes other processes and instances, not threads sharing this one.
        self._thread_lock = threading.RLock()
        self._reparse_warned = False
        # (path, sha256) -> the modules that file content imports (core.imports).
        self._imports: dict[tuple[str, str], frozenset[str]] = {}
        self.listen = listen
        self._listener: DeployListener | None = None
        self._listen_client: ApiClient | None = None
        # time.monotonic() until which a listening bundle's refresh() does not ask the server
        # itself: after a refresh that asked it, and after a failed one.
        self._check_at = 0.0
        self._retry_at = 0.0
        self._prepared: _Prepared | None = None
        self._forces_refresh: bool | None = None
        self._warming: threading.Thread | None = None

    # -- the BaseDagBundle API ----------------------------------------------------------------
    @property
    def path(self) -> Path:
        if self.version:
            return self.versions_dir / self.version
        return self.current_link

    def get_current_version(self) -> Any:
        """The version Airflow records for what it parses and runs (see ``_bundle_version``)."""
        if self.version:
            return _bundle_version(self.version)
        name = read_link(self.current_link)
        return _bundle_version(version_of(name)) if name else None

    def initialize(self) -> None:
        if self.version:
            self._materialize_pinned()
        else:
            self._refresh_current()
            self._warm_imports()
        super().initialize()

    def refresh(self) -> None:
        if self.version:
            # A pinned bundle never changes; make sure it is on disk.
            self._materialize_pinned()
        else:
            self._refresh_current()

    # -- following the deployment -------------------------------------------------------------
    def _refresh_current(self) -> None:
        if self._may_skip():
            return
        with self._thread_lock, self.lock():
            self._clear_tmp()
            current = read_link(self.current_link)
            if current and not (self.trees_dir / current).is_dir():
                current = None
            current_version = version_of(current) if current else None
            try:
                fetched = self._fetch_current(current_version)
                self._check_at = time.monotonic() + CHECK_SECONDS
                if fetched is None or fetched[1] == current_version:
                    return
                prepared = self._prepared
                if prepared and (prepared.plan.version, prepared.base) == (fetched[1], current):
                    self._prepared = None
                    self._switch(prepared, current, ahead=True)
                else:
                    self._install(*fetched, current)
            except _REFRESH_ERRORS as exc:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                self._api_failed(exc)
                if current is None:
                    raise BundleError(
                        f"DAG bundle {self.name!r} has no local copy of deployment "
                        f"{self.deployment!r} and cannot fetch one from {self.url}: {exc}"
                    ) from exc
                log.warning(
                    "DAG bundle %s: keeping version %s of deployment %s; refresh from %s "
                    "failed: %s",
                    self.name,
                    current_version,
                    self.deployment,
                    self.url,
                    exc,
                )

    def _may_skip(self) -> bool:
        """For a listening bundle: True when the listener is connected and heard of no version
        other than ours and the server was asked recently, or a refresh failed just now."""
        if not self.listen:
            return False
        now = time.monotonic()
        if now < self._retry_at:
            return True
        current = read_link(self.current_link)
        version = version_of(current) if current else None
        if self._listener is None:
            self._listener = DeployListener(self._listen_fetch, self.name, self._prepare)
        self._listener.start(version)
        if now >= self._check_at:
            return False
        return self._listener.connected and self._listener.news(version) is None

    def _listen_fetch(self, etag: str | None, wait: float) -> DagsCurrentOut | None:
        if self._listen_client is None:
            self._listen_client = ApiClient(
                self.url, self._token(), timeout=LISTEN_SECONDS + API_TIMEOUT_SECONDS
            )
        try:
            return self._listen_client.current_dags(
                self.deployment, etag, wait, inline=MAX_INLINE_BYTES
            )
        except ApiError as exc:
            if exc.status in (401, 403):
                self._listen_client.close()  # read the token again next time
                self._listen_client = None
            raise

    def _fetch_current(self, etag: str | None) -> tuple[Manifest, str, Inline] | None:
        """The deployment's current DAG manifest, version and the blobs its answer carried;
        None if still version ``etag``. What the listener heard is used as is, without asking
        the server again."""
        listener = self._listener
        body = listener.news(etag) if listener is not None and listener.connected else None
        if body is None:
            try:
                body = self._api().current_dags(self.deployment, etag, inline=MAX_INLINE_BYTES)
            except ApiError as exc:
                if exc.status == 404 and self._deployment_exists():
                    return Manifest(), EMPTY_VERSION, []  # no deploys yet: an empty tree
                raise
        return None if body is None else (*self._manifest_of(body), _inline(body))

    @staticmethod
    def _manifest_of(body: DagsCurrentOut) -> tuple[Manifest, str]:
        manifest = Manifest.from_dicts((file.model_dump() for file in body.files), portable=False)
        version = manifest.version
        if version != body.version:
            raise BundleError(
                f"the server's DAG version {body.version} does not match its file list ({version})"
            )
        return manifest, version

    def _deployment_exists(self) -> bool:
        try:
            self._api().get_deployment(self.deployment)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _install(
        self, manifest: Manifest, version: str, inline: Inline, current: str | None
    ) -> None:
        self._drop_prepared()  # built for another version or base; _prune removes its tree
        self._switch(self._build_next(manifest, version, current, inline), current)

    def _build_next(
        self, manifest: Manifest, version: str, current: str | None, inline: Inline
    ) -> _Prepared:
        """Build ``version`` under trees/ beside ``current``, which it replaces next, with the
        ``inline`` blobs its answer carried and the missing others downloaded: from the spare
        tree updated in place where there is one (reuse.py), else anew."""
        previous = self.manifests.load(version_of(current)) if current else None
        plan = BuildPlan(
            manifest,
            version,
            self.cache,
            previous_root=self.trees_dir / current if current and previous else None,
            previous=previous,
        )
        name = unique_name(version)
        dest = self.trees_dir / name
        if not (plan.previous_root and self._update_spare(plan, dest, inline)):
            plan.downloaded |= self._download(manifest.entries, inline)
            self._build_into(plan, dest)
        return _Prepared(plan, name, current or "", filed=False)

    def _update_spare(self, plan: BuildPlan, dest: Path, inline: Inline) -> bool:
        """Make ``plan``'s tree at ``dest`` from a spare tree updated in place (reuse.py);
        False when there is none, or it failed and the tree must be built anew."""
        assert plan.previous is not None and plan.previous_root is not None
        spare = self._spare(plan.previous_root.name)
        if spare is None:
            return False
        changed = set(plan.changed_paths())
        entries = [e for e in plan.manifest.entries if e.path in changed]
        plan.downloaded |= self._download(entries, inline)
        staging = self.tmp_dir / unique_name(plan.version)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            # Out of trees/ before it changes: nobody reads a tree half updated.
            os.rename(self.trees_dir / spare, staging)
            update(plan, staging, self.tmp_dir)
            self.manifests.save(plan.manifest, plan.version)
            os.rename(staging, dest)
        except (BundleError, OSError) as exc:
            remove_tree(staging)
            log.warning(
                "DAG bundle %s: could not make version %s from tree %s (%s); building it anew",
                self.name,
                plan.version,
                spare,
                exc,
            )
            return False
        return True

    def _spare(self, current: str) -> str | None:
        """The tree to make the next version from: the newest under trees/ that is neither the
        current tree nor the one before it (a parse may have resolved its path just before the
        last switch)."""
        previous = read_link(self.previous_link)
        found: tuple[int, str] | None = None
        for path in self.trees_dir.iterdir():
            if path.name[0] == "." or path.name in (current, previous):
                continue
            with contextlib.suppress(OSError):
                made = path.lstat().st_ctime_ns
                if path.is_dir() and (found is None or made > found[0]):
                    found = (made, path.name)
        return found[1] if found else None

    def _switch(self, new: _Prepared, current: str | None, ahead: bool = False) -> None:
        plan, name = new.plan, new.name
        # The tree the current one replaced is the spare for the next version (reuse.py).
        spare = read_link(self.previous_link)
        if current:
            swap_link(self.previous_link, f"{self.trees_dir.name}/{current}", self.tmp_dir)
        swap_link(self.current_link, f"{self.trees_dir.name}/{name}", self.tmp_dir)
        log.info(
            "DAG bundle %s: deployment %s switched to version %s (%d files, %d downloaded%s)",
            self.name,
            self.deployment,
            plan.version,
            len(plan.manifest),
            len(plan.downloaded),
            ", built when the listener heard of it" if ahead else "",
        )
        if plan.previous is not None and not new.filed:
            self._ask_reparse(plan, self.trees_dir / name)
        self._prune({n for n in (name, current, spare) if n} if current else {name})
        self._warm_imports()

    def _prepare(self, body: DagsCurrentOut) -> None:
        """On the listener's thread, as soon as a new version is heard of: build its tree beside
        the current one and, where Airflow refreshes the bundle when it claims the requests,
        ask it to parse the changed files first. The DAG processor's next loop then claims
        them, and its refresh() only switches the link before the files are parsed."""
        if not self.listen:
            return
        with self._thread_lock, self.lock():
            current = read_link(self.current_link)
            if not current or not (self.trees_dir / current).is_dir():
                return  # nothing to build against: refresh() builds the first tree
            if version_of(current) == body.version:
                return
            prepared = self._prepared
            if prepared and (prepared.plan.version, prepared.base) == (body.version, current):
                return
            self._drop_prepared()
            self._clear_tmp()
            new = self._build_next(*self._manifest_of(body), current, _inline(body))
            self._prepared = new
            if new.plan.previous is not None and self._claims_force_refresh():
                new.filed = self._ask_reparse(new.plan, self.trees_dir / new.name)
        log.info(
            "DAG bundle %s: version %s of deployment %s is ready to switch to%s",
            self.name,
            body.version,
            self.deployment,
            "; its changed files are queued for parsing" if new.filed else "",
        )

    def _drop_prepared(self) -> None:
        """Forget the tree built for a version superseded before the switch: built against the
        current tree, it is the best spare for the next one (reuse.py); the next switch
        removes it if it is not used."""
        self._prepared = None

    def _claims_force_refresh(self) -> bool:
        if self._forces_refresh is None:
            self._forces_refresh = _claims_force_refresh()
        return self._forces_refresh

    # -- pinned versions (workers) ------------------------------------------------------------
    def _materialize_pinned(self) -> None:
        assert self.version
        dest = self.versions_dir / self.version
        if self._pinned_complete(dest):
            return
        with self._thread_lock, self.lock():
            if self._pinned_complete(dest):
                return
            self._clear_tmp()
            try:
                # A version the DAG processor already has here needs no server: a task can
                # start while dagship is down.
                manifest = self.manifests.load(self.version) or self._fetch_manifest(self.version)
                plan = BuildPlan(
                    manifest,
                    self.version,
                    self.cache,
                    downloaded=self._download(manifest.entries),
                )
                remove_tree(dest)
                self._build_into(plan, dest)
                self._prune()
            except _REFRESH_ERRORS as exc:
                self._api_failed(exc)
                raise BundleError(
                    f"DAG bundle {self.name!r} cannot materialize version {self.version} of "
                    f"deployment {self.deployment!r} from {self.url}: {exc}"
                ) from exc

    def _pinned_complete(self, dest: Path) -> bool:
        assert self.version
        manifest = self.manifests.load(self.version)
        return manifest is not None and dest.is_dir() and matches(dest, manifest)

    def _fetch_manifest(self, version: str) -> Manifest:
        if version == EMPTY_VERSION:
            return Manifest()
        if not is_version(version):
            raise BundleError(f"{version!r} is not a dagship version (sha256-<64 hex>)")
        body = self._api().get_manifest(version)
        manifest = Manifest.from_dicts((file.model_dump() for file in body.files), portable=False)
        if manifest.version != version:
            raise BundleError(f"the server's manifest {version} hashes to {manifest.version}")
        return manifest

    # -- shared steps ---------------------------------------------------------------------
    def _download(self, entries: Iterable[ManifestEntry], inline: Inline | None = None) -> set[str]:
        """Bring the blobs of ``entries`` that the cache lacks; return the digests written."""
        return self.cache.receive(self.cache.missing(entries), inline or [], self._api())

    def _build_into(self, plan: BuildPlan, dest: Path) -> None:
        """Build in tmp/, verify, save the manifest, then rename the whole tree to ``dest``."""
        staging = self.tmp_dir / unique_name(plan.version)
        try:
            build(plan, staging)
            self.manifests.save(plan.manifest, plan.version)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, dest)
        except BaseException:
            remove_tree(staging)
            raise

    def _prune(self, keep: set[str] | None = None) -> None:
        """Remove trees other than ``keep``, then manifests and (hourly) blobs nothing uses."""
        if keep is not None:
            for path in self.trees_dir.iterdir():
                if path.name not in keep:
                    remove_tree(path, background=True)
        versions: set[str] = set()
        for folder in (self.trees_dir, self.versions_dir):
            if folder.is_dir():
                versions.update(version_of(p.name) for p in folder.iterdir() if p.name[0] != ".")
        self.manifests.prune(versions)
        stamp = self.cache.root / ".last-gc"
        with contextlib.suppress(FileNotFoundError):
            if time.time() - stamp.stat().st_mtime < CACHE_GC_INTERVAL:
                return
        manifests = [self.manifests.load(v) for v in versions]
        if any(m is None for m in manifests):
            return  # never delete a blob on incomplete information
        used = set().union(*(m.digests() for m in manifests if m is not None))
        removed = self.cache.collect(used)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        if removed:
            log.info("DAG bundle %s: removed %d unused blobs from its cache", self.name, removed)

    def _clear_tmp(self) -> None:
        """Leftovers of an interrupted build; safe because we hold the bundle's lock."""
        for tmp in (self.tmp_dir, self.cache.tmp):
            if tmp.is_dir():
                for path in tmp.iterdir():
                    if path.is_dir() and not path.is_symlink():
                        remove_tree(path)
                    else:
                        path.unlink(missing_ok=True)

    def _ask_reparse(self, plan: BuildPlan, root: Path) -> bool:
        """Ask the DAG processor to parse first the files the switch to ``plan`` (built at
        ``root``) added or changed, and the unchanged ones that import a changed module or name a
        changed file (core.imports);
        False if that could not be asked."""
        if not self.request_reparse:
            return False
        try:
            importers = self._importers(plan, root)
            wanted = parseable(plan.changed_paths() + sorted(importers))
            filed = request_reparse(self.name, wanted)
        except Exception as exc:  # best-effort: no metadata database here, or no table
            level = logging.DEBUG if self._reparse_warned else logging.WARNING
            self._reparse_warned = True
            log.log(level, "DAG bundle %s: could not request reparsing: %s", self.name, exc)
            return False
        if filed:
            log.info(
                "DAG bundle %s: asked Airflow to parse %d files first (%d of the files to "
                "parse are unchanged but import a changed module or name a changed file)",
                self.name,
                filed,
                len(importers),
            )
        return True

    def _warm_imports(self) -> None:
        """Read the imports of the current tree's Python files on a daemon thread, off the next
        deploy's path: after a start, the first deploy of a 10,000-file bundle would otherwise
        read them all (seconds) before Airflow could be asked to parse anything."""
        if not self.request_reparse or (self._warming and self._warming.is_alive()):
            return
        current = read_link(self.current_link)
        manifest = self.manifests.load(version_of(current)) if current else None
        if current is None or manifest is None:
            return
        root, cache = self.trees_dir / current, self._imports
        wanted = [
            (e.path, e.sha256)
            for e in manifest.entries
            if e.path.endswith(".py") and (e.path, e.sha256) not in cache
        ]

        def warm() -> None:
            for key in wanted:
                if key not in cache:
                    try:
                        data = (root / key[0]).read_bytes()
                    except OSError:
                        return  # that tree was replaced meanwhile: the next switch warms anew
                    cache[key] = imports.references(data, key[0])

        if wanted:
            self._warming = threading.Thread(
                target=warm, name=f"dagship-imports-{self.name}", daemon=True
            )
            self._warming.start()

    def _importers(self, plan: BuildPlan, root: Path) -> set[str]:
        """Unchanged files of the new tree at ``root`` that import a module added, changed or
        removed since the previous tree, or name a file that changed: they may give a different
        result now, or their new runs read that file (core.imports)."""
        assert plan.previous is not None
        after = {entry.path: entry.sha256 for entry in plan.manifest.entries}

        def imports_of(path: str) -> frozenset[str]:
            key = (path, after[path])
            if key not in self._imports:
                self._imports[key] = imports.references((root / path).read_bytes(), path)
            return self._imports[key]

        before = {entry.path: entry.sha256 for entry in plan.previous.entries}
        found = imports.importers(after, before, imports_of)
        # Keep the imports of this version's files only: the next switch starts from it. In
        # place: the warming thread may be adding to this very dict.
        for key in list(self._imports):
            if key not in after.items():
                self._imports.pop(key, None)
        return found

    # -- the dagship server -------------------------------------------------------------------
    def _api(self) -> ApiClient:
        if self._client is None:
            # refresh() runs in the DAG processor's loop: a hung server must not stall
            # parsing for long. The timeout is per read, so large blobs still download.
            self._client = ApiClient(self.url, self._token(), timeout=API_TIMEOUT_SECONDS)
        return self._client

    def _api_failed(self, exc: BaseException) -> None:
        # A rejected token may have been rotated in the connection: read it again next time.
        cause = exc.__cause__ if isinstance(exc, BundleError) else exc
        if isinstance(cause, ApiError) and cause.status in (401, 403) and self._client is not None:
            self._client.close()
            self._client = None

    def _token(self) -> str | None:
        if not self.conn_id:
            return os.environ.get(self.token_env) or None
        try:
            from airflow.sdk import BaseHook
        except ImportError:  # Airflow 3.0
            from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception as exc:
            raise BundleError(
                f"cannot read Airflow connection {self.conn_id!r} for the dagship token: {exc}"
            ) from exc
        if not conn.password:
            raise BundleError(
                f"Airflow connection {self.conn_id!r} has no password; put the dagship API "
                "token there"
            )
        return str(conn.password)
