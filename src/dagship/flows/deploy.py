"""The deploy flow: scan, decide what changed, upload what is missing, commit one deploy."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagship.client.api import JSON, ApiClient
from dagship.client.errors import DeployError
from dagship.core.kinds import Versions, choose_kind
from dagship.core.vocabulary import Kind, Mode
from dagship.flows.upload import UploadProgress, upload_missing
from dagship.integrations.ci import detect
from dagship.integrations.source import build_source
from dagship.project.scan import ScannedProject, ScannedTree, scan_project

# Called with the kind of deploy once it is known and before anything is uploaded; returns
# the checks to record on the deploy (e.g. {"parse": "passed"}) or raises to block it.
CheckDeploy = Callable[[Kind], Mapping[str, str]]


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did. ``deploy`` is the server's Deploy object (the current one when
    ``unchanged``); ``uploaded_*`` count what this run uploaded."""

    deploy: JSON
    unchanged: bool
    uploaded_files: int = 0
    uploaded_bytes: int = 0

    @property
    def id(self) -> str:
        return str(self.deploy["id"])

    @property
    def seq(self) -> int:
        return int(self.deploy["seq"])

    @property
    def deployment(self) -> str:
        return str(self.deploy["deployment"])

    @property
    def kind(self) -> str:
        return str(self.deploy["kind"])

    @property
    def dags_version(self) -> str:
        return str(self.deploy["dags_version"])

    @property
    def project_version(self) -> str:
        return str(self.deploy["project_version"])

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.deploy,
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
    origin: str | None = None,
    on_progress: UploadProgress | None = None,
    env: Mapping[str, str] | None = None,
    check: CheckDeploy | None = None,
) -> DeployResult:
    """Deploy the project folder at ``path`` to ``deployment``, uploading only new content.

    ``check`` runs once dagship knows what the deploy changes and before any upload: an
    exception from it blocks the deploy with nothing uploaded and no deploy made.
    """
    env = os.environ if env is None else env
    scanned = scan_project(path)
    info = client.get_deployment(deployment)
    current: JSON | None = info.get("current")
    current_seq = int(current["seq"]) if current else 0
    if expect_seq is not None and expect_seq != current_seq:
        raise DeployError(
            f"deployment {deployment} is at deploy #{current_seq}, not #{expect_seq} as "
            f"expected (--expect-seq): someone deployed in between; check "
            f"`dagship deploys list {deployment}` and deploy again"
        )
    dag_deploys = bool(info.get("dag_deploys", True))
    if mode == "dags" and not dag_deploys:
        raise DeployError(
            f"deployment {deployment} has DAG deploys disabled, so every deploy carries the "
            f"whole project: run `dagship deploy` without --dags, or enable them with "
            f"`dagship deployment update {deployment} --dag-deploys`"
        )
    kind = choose_kind(
        Versions(current["dags_version"], current["project_version"]) if current else None,
        Versions(scanned.dags.version, scanned.project.version),
        dag_deploys=dag_deploys,
        mode=Mode(mode),
    )
    if kind is None:
        assert current is not None
        return DeployResult(deploy=current, unchanged=True)
    checks = None
    if check is not None:
        # Ask first whether the server would take this deploy, so a refused one (role,
        # binding) fails at once rather than after a check that may take a while.
        client.missing_blobs([], deployment, kind)
        checks = dict(check(kind))
    trees = _trees(scanned, kind)
    stats = upload_missing(client, trees, on_progress, deployment=deployment, kind=kind)
    request = deploy_request(
        scanned, kind, expect_seq, description, origin or _origin(env), stats.files, stats.bytes
    )
    if checks is not None:
        request["checks"] = checks
    request.update(_git_fields(scanned.root, env))
    created = client.create_deploy(deployment, request)
    return DeployResult(created, False, stats.files, stats.bytes)


def deploy_request(
    scanned: ScannedProject,
    kind: Kind,
    expect_seq: int | None,
    description: str | None,
    origin: str,
    uploaded_files: int,
    uploaded_bytes: int,
) -> JSON:
    """The body of ``POST /deployments/{name}/deploys`` (without git fields)."""
    return {
        "kind": kind,
        "dags_manifest": scanned.dags.manifest.to_dicts() if kind != "project" else None,
        "project_manifest": scanned.project.manifest.to_dicts() if kind != "dags" else None,
        "expect_seq": expect_seq,
        "origin": origin,
        "description": description,
        "uploaded_files": uploaded_files,
        "uploaded_bytes": uploaded_bytes,
    }


def _trees(scanned: ScannedProject, kind: Kind) -> list[ScannedTree]:
    if kind == "dags":
        return [scanned.dags]
    if kind == "project":
        return [scanned.project]
    return [scanned.dags, scanned.project]


def _origin(env: Mapping[str, str]) -> str:
    # detect() counts CI=true from a system it does not know as CI too.
    return "ci" if detect(env).in_ci else "cli"


def _git_fields(root: Path, env: Mapping[str, str]) -> JSON:
    source = build_source(root, env)
    return {
        "git_sha": source.sha,
        "git_branch": source.branch,
        "git_author": source.author,
        "git_message": source.message,
    }
