"""`dagship s3 sync`: one DAG-only deploy (origin s3) of an S3 prefix's current state.

The deployment's seq is read before the listing and sent as ``expect_seq``: if anyone deploys
in between, the server refuses the deploy and the sync starts over from a new listing, so
concurrent syncs (a burst of Lambda invocations) end in the prefix's final state and never
deploy an older listing over a newer one.
"""

from __future__ import annotations

import dataclasses
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pathspec import GitIgnoreSpec

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.manifest import Manifest, ManifestEntry
from dagship.core.schemas import DeployOut, DeployRequest, S3Source
from dagship.core.vocabulary import ErrorCode, Kind, Origin
from dagship.integrations.s3.bucket import (
    S3Location,
    S3Object,
    S3SyncError,
    check_key_path,
    connect,
    download,
    full_object_sha256,
    list_objects,
    parse_s3_url,
)
from dagship.integrations.s3.hashes import HashCache, default_cache_file
from dagship.project.ignore import DAGSHIPIGNORE, always_excluded

# A burst of N concurrent syncs needs at most N attempts for the last one to land.
MAX_ATTEMPTS = 10
WORKERS = 8


@dataclass(frozen=True)
class SyncResult:
    """What one sync did; ``deploy`` is the current deploy when ``unchanged``."""

    deploy: DeployOut
    unchanged: bool
    files: int
    read_objects: int = 0
    read_bytes: int = 0
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    attempts: int = 1

    @property
    def deployment_name(self) -> str:
        return self.deploy.deployment

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.deploy.model_dump(mode="json", by_alias=True),
            "unchanged": self.unchanged,
            "deployed": not self.unchanged,
            "files": self.files,
            "read_objects": self.read_objects,
            "read_bytes": self.read_bytes,
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "attempts": self.attempts,
        }


@dataclass
class _Plan:
    """The prefix as a DAG bundle: its manifest and where to read each content."""

    location: S3Location
    objects: list[S3Object]
    digests: dict[str, str] = field(default_factory=dict)  # key -> digest
    local: dict[str, Path] = field(default_factory=dict)  # digest -> downloaded file
    learned: dict[str, str] = field(default_factory=dict)  # cache key -> digest
    read_objects: int = 0
    read_bytes: int = 0

    def manifest(self) -> Manifest:
        return Manifest.build(
            ManifestEntry(obj.path, self.digests[obj.key], obj.size) for obj in self.objects
        )

    def source(self) -> S3Source:
        newest = max(self.objects, key=lambda obj: (obj.modified_at, obj.key))
        return S3Source(
            bucket=self.location.bucket,
            prefix=self.location.prefix,
            newest_key=newest.key,
            newest_version_id=newest.version_id,
            newest_modified_at=newest.modified_at,
        )


def sync_prefix(
    client: ApiClient,
    url: str,
    deployment: str,
    *,
    s3: Any = None,
    cache_file: Path | None = None,
    description: str | None = None,
) -> SyncResult:
    """Deploy the DAG files under ``url`` (s3://bucket/prefix) to ``deployment``, unless the
    deployment already runs exactly them. Raises S3SyncError with nothing deployed when
    the prefix cannot be deployed as it is."""
    location = parse_s3_url(url)
    s3 = connect() if s3 is None else s3
    cache = HashCache(cache_file or default_cache_file())
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = _sync_once(client, s3, location, deployment, cache, description)
        except ApiError as exc:
            if exc.code != ErrorCode.SEQ_CONFLICT or attempt == MAX_ATTEMPTS:
                raise
            continue
        return dataclasses.replace(result, attempts=attempt)
    raise AssertionError("unreachable")


def _sync_once(
    client: ApiClient,
    s3: Any,
    location: S3Location,
    deployment: str,
    cache: HashCache,
    description: str | None,
) -> SyncResult:
    # The seq first, then the listing: a deploy made after this read fails ours (expect_seq).
    current = client.get_deployment(deployment).current
    max_size = client.info().max_blob_size
    with tempfile.TemporaryDirectory(prefix="dagship-s3-") as tmp:
        plan = _Plan(location, deployable_objects(s3, location, Path(tmp), max_size))
        _hash_objects(s3, plan, cache, Path(tmp))
        cache.save(plan.learned)
        manifest = plan.manifest()
        if current is not None and current.dags_version == manifest.version:
            return SyncResult(current, True, len(plan.objects), plan.read_objects, plan.read_bytes)
        files, size = _upload_missing(client, s3, plan, deployment, Path(tmp))
        request = DeployRequest(
            kind=Kind.DAGS,
            dags_manifest=manifest.to_dicts(),
            expect_seq=current.seq if current else 0,
            origin=Origin.S3,
            s3_source=plan.source(),
            description=description,
            uploaded_files=files,
            uploaded_bytes=size,
        )
        created = client.create_deploy(deployment, request)
    return SyncResult(
        created, False, len(plan.objects), plan.read_objects, plan.read_bytes, files, size
    )


def deployable_objects(s3: Any, location: S3Location, tmp: Path, max_size: int) -> list[S3Object]:
    """The objects to deploy: the prefix's listing without what ``.dagshipignore`` (at the
    prefix's root) excludes; every one a safe path within the server's size limit.

    One bad key stops the sync before anything is read or uploaded: nothing partial.
    ``.airflowignore`` is deployed like any file, and Airflow applies it when parsing.
    """
    objects = list_objects(s3, location)
    ignore = _ignore_spec(s3, location, objects, tmp)
    kept = []
    for obj in objects:
        if any(always_excluded(part) for part in obj.path.split("/")):
            continue
        if ignore is not None and ignore.match_file(obj.path):
            continue
        check_key_path(obj.key, obj.path)
        if obj.size > max_size:
            raise S3SyncError(
                f"object {obj.key!r} is {obj.size:,} bytes, over the server's limit of "
                f"{max_size:,} bytes for one file (DAGSHIP_MAX_BLOB_SIZE): add it to "
                f"{DAGSHIPIGNORE} at the prefix's root or remove it; nothing was deployed"
            )
        kept.append(obj)
    if not kept:
        raise S3SyncError(f"{location.url} has no files to deploy; nothing was deployed")
    return kept


def _ignore_spec(
    s3: Any, location: S3Location, objects: list[S3Object], tmp: Path
) -> GitIgnoreSpec | None:
    found = next((obj for obj in objects if obj.path == DAGSHIPIGNORE), None)
    if found is None:
        return None
    target = tmp / "dagshipignore"
    download(s3, location, found, target)
    text = target.read_text(encoding="utf-8", errors="replace")
    spec = GitIgnoreSpec.from_lines(text.splitlines())
    return spec if spec.patterns else None


def _hash_objects(s3: Any, plan: _Plan, cache: HashCache, tmp: Path) -> None:
    """Each object's digest: remembered, S3's own full-object SHA-256 (asked with a HEAD
    unless the listing says there is none), or read once; the last two in parallel."""
    unknown: list[tuple[int, S3Object]] = []
    for index, obj in enumerate(plan.objects):
        digest = cache.get(obj.cache_key)
        if digest is None:
            unknown.append((index, obj))
        else:
            plan.digests[obj.key] = digest

    def resolve(item: tuple[int, S3Object]) -> tuple[S3Object, str, Path | None]:
        index, obj = item
        if obj.has_sha256 is not False:
            digest = full_object_sha256(s3, plan.location, obj)
            if digest is not None:
                return obj, digest, None
        dest = tmp / f"object-{index}"
        return obj, download(s3, plan.location, obj, dest), dest

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for obj, digest, dest in pool.map(resolve, unknown):
            plan.digests[obj.key] = digest
            plan.learned[obj.cache_key] = digest
            if dest is not None:
                plan.local.setdefault(digest, dest)
                plan.read_objects += 1
                plan.read_bytes += obj.size


def _upload_missing(
    client: ApiClient, s3: Any, plan: _Plan, deployment: str, tmp: Path
) -> tuple[int, int]:
    """Upload the contents the server lacks, reading from S3 those not read already."""
    by_digest = {plan.digests[obj.key]: obj for obj in plan.objects}
    missing = client.missing_blobs(list(by_digest), deployment, Kind.DAGS)

    def upload(digest: str) -> int:
        obj = by_digest[digest]
        path = plan.local.get(digest)
        if path is None:
            path = tmp / f"upload-{digest}"
            if download(s3, plan.location, obj, path) != digest:
                raise S3SyncError(
                    f"object {obj.key!r} no longer has the content it was listed with: "
                    "nothing was deployed; sync again"
                )
        client.put_blob(digest, path, obj.size)
        return obj.size

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        sizes = list(pool.map(upload, missing))
    return len(sizes), sum(sizes)
