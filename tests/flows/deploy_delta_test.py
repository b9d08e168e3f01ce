"""The deploy flow sends a tree's changes from the deployment's current version (a manifest
delta) when this machine keeps that version's manifest, and the whole manifest otherwise: first
deploys, another machine's deploy, someone deploying in between, a damaged cache."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.vocabulary import Kind
from dagship.flows.deploy import delta_refused, deploy
from dagship.project import manifest_cache
from dagship.project.scan import scan_project
from tests.helpers import Api, Server, dag_source, make_project, unique, write


class Recording(httpx.BaseTransport):
    """A real HTTP transport that keeps the JSON body of each request, by method and path."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.method == "POST" else None
        self.sent.append((f"{request.method} {request.url.path}", body))
        return self.inner.handle_request(request)

    def bodies(self, suffix: str) -> list[Any]:
        return [body for name, body in self.sent if name.endswith(suffix)]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def recording() -> Iterator[Recording]:
    transport = Recording()
    yield transport
    transport.inner.close()


def client(server: Server, transport: Recording) -> ApiClient:
    return ApiClient(server.url, server.admin_token, transport=transport)


def edit(root: Path, name: str) -> None:
    write(root, "dags/dag_1.py", dag_source("dag_1", f"# edit {name}\n"))


def test_a_one_file_change_sends_its_delta_and_asks_about_one_blob(
    server: Server, api: Api, project: Path, cache: Path, recording: Recording
) -> None:
    name = str(api.create_deployment(unique())["name"])
    with client(server, recording) as first_client:
        first = deploy(first_client, project, name)
    [whole] = recording.bodies("/deploys")
    assert "dags_manifest" in whole and "dags_delta" not in whole
    assert manifest_cache.load(first.dags_version) is not None
    recording.sent.clear()

    edit(project, name)
    with client(server, recording) as second_client:
        second = deploy(second_client, project, name)
    assert (second.kind, second.uploaded_files) == (Kind.DAGS, 1)
    [body] = recording.bodies("/deploys")
    assert "dags_manifest" not in body
    sent = body["dags_delta"]
    assert (sent["base"], sent["version"]) == (first.dags_version, second.dags_version)
    assert [e["path"] for e in sent["changed"]] == ["dag_1.py"] and sent["removed"] == []
    [asked] = recording.bodies("/blobs/missing")
    assert asked["digests"] == [sent["changed"][0]["sha256"]]
    # The server holds the manifest the scan found.
    scanned = scan_project(project).dags.manifest
    assert second.dags_version == scanned.version
    stored = api.manifest(second.dags_version)
    assert sorted(stored) == [entry.path for entry in scanned.entries]


def test_a_version_this_machine_did_not_deploy_is_sent_whole(
    server: Server, api: Api, project: Path, tmp_path: Path, cache: Path, recording: Recording
) -> None:
    name = str(api.create_deployment(unique())["name"])
    other = make_project(tmp_path / "other")
    with client(server, recording) as first_client:
        deploy(first_client, other, name)
    for kept in cache.glob("manifests/*"):
        kept.unlink()  # as if another machine had deployed
    recording.sent.clear()
    with client(server, recording) as second_client:
        result = deploy(second_client, project, name)
    [body] = recording.bodies("/deploys")
    assert "dags_manifest" in body and "project_manifest" in body
    assert result.dags_version == scan_project(project).dags.version


def test_a_deploy_made_in_between_falls_back_to_the_whole_manifest(
    server: Server, api: Api, project: Path, tmp_path: Path, cache: Path, recording: Recording
) -> None:
    name = str(api.create_deployment(unique())["name"])
    with client(server, recording) as first_client:
        deploy(first_client, project, name)
    edit(project, name)
    other = make_project(tmp_path / "other")

    def someone_deploys(kind: Kind) -> dict[str, str]:
        # After this deploy read the current version, before it commits.
        with ApiClient(server.url, server.admin_token) as theirs:
            deploy(theirs, other, name)
        return {}

    recording.sent.clear()
    with client(server, recording) as second_client:
        result = deploy(second_client, project, name, check=someone_deploys)
    first_try, second_try = recording.bodies("/deploys")
    assert "dags_delta" in first_try
    assert "dags_manifest" in second_try and "dags_delta" not in second_try
    # The edited file, uploaded before the first try, is counted once.
    assert result.uploaded_files == 1 and second_try["uploaded_files"] == 1
    current = api.get(f"/deployments/{name}").json()["current"]
    assert (current["seq"], current["id"]) == (3, result.id)
    assert current["dags_version"] == scan_project(project).dags.version


def test_a_damaged_kept_manifest_is_not_used(
    server: Server, api: Api, project: Path, cache: Path, recording: Recording
) -> None:
    name = str(api.create_deployment(unique())["name"])
    with client(server, recording) as first_client:
        first = deploy(first_client, project, name)
    kept = cache / "manifests" / f"{first.dags_version}.manifest"
    kept.write_bytes(kept.read_bytes().replace(b"dag_0.py", b"dag_9.py"))
    assert manifest_cache.load(first.dags_version) is None
    edit(project, name)
    recording.sent.clear()
    with client(server, recording) as second_client:
        second = deploy(second_client, project, name)
    [body] = recording.bodies("/deploys")
    assert "dags_manifest" in body
    assert second.dags_version == scan_project(project).dags.version
    # The deploy keeps its own manifest, intact, for the next one.
    assert manifest_cache.load(second.dags_version) is not None


@pytest.mark.parametrize(
    ("status", "code", "detail", "refused"),
    [
        # What a server before deltas answers: its request model forbids unknown fields.
        (422, "invalid", "body.dags_delta: Extra inputs are not permitted", True),
        (422, "invalid", "body.project_delta: Extra inputs are not permitted", True),
        (409, "base_mismatch", "dags_delta was made against version sha256-…", True),
        (422, "bad_manifest", "project_delta: removed path 'a.py' is not in base …", True),
        (422, "missing_blobs", "1 blob(s) are not uploaded yet", False),
        (409, "seq_conflict", "deployment d is at seq 3, not the expected seq 2", False),
        (413, "manifest_too_large", "dags_delta names 11 files, over the server's limit", False),
    ],
)
def test_which_refusals_send_the_whole_manifests(
    status: int, code: str, detail: str, refused: bool
) -> None:
    assert delta_refused(ApiError(status, code, detail)) is refused
