"""Project trees: built from a real server's blobs, content-addressed, never half-written,
pruned to what the host runs or may fall back to."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagship.agent.errors import AgentError
from dagship.agent.home import AgentHome, agent_id
from dagship.agent.project_tree import ProjectTrees, manifest_of
from dagship.client.api import ApiClient
from dagship.core.manifest import Manifest
from dagship.core.schemas import ProjectCurrentOut
from tests.helpers import CountingTransport, Server, unique


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server")).start()
    try:
        yield srv
    finally:
        srv.close()


def _project_deploy(server: Server, files: dict[str, bytes]) -> Manifest:
    api = server.api()
    name = unique("tree")
    api.create_deployment(name)
    r = api.deploy_files(name, files, kind="project")
    assert r.status_code == 201, r.text
    with ApiClient(server.url, server.admin_token) as client:
        body = client.get_manifest(r.json()["project_version"])
    return Manifest.from_dicts(f.model_dump() for f in body.files)


def test_a_tree_is_materialized_once_from_the_servers_blobs(server: Server, tmp_path: Path) -> None:
    files = {
        "include/helpers.py": b"def helper():\n    return 42\n",
        "requirements.txt": b"cowsay\n" + unique().encode(),
        "plugins/my_plugin.py": b"# plugin\n",
    }
    manifest = _project_deploy(server, files)
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    counter = CountingTransport()
    with ApiClient(server.url, server.admin_token, transport=counter) as client:
        tree = trees.materialize(manifest, client)
        assert tree == home.projects / manifest.version
        for path, data in files.items():
            assert (tree / path).read_bytes() == data
            # Read-only, hard-linked from the blob cache.
            assert not os.stat(tree / path).st_mode & stat.S_IWUSR
            assert os.stat(tree / path).st_nlink == 2
        # The three blobs came in one batch.
        assert counter.paths == ["POST /api/v1/blobs/batch"]
        # Again: the tree is there, nothing is fetched or rebuilt.
        assert trees.materialize(manifest, client) == tree
        assert counter.paths == ["POST /api/v1/blobs/batch"]
    assert list(home.tmp.iterdir()) == []
    assert list(home.blobs.glob("tmp/*")) == []


def test_a_server_without_batches_gets_one_request_per_blob(server: Server, tmp_path: Path) -> None:
    files = {f"include/m{i}.py": f"m = {i}  # {unique()}\n".encode() for i in range(3)}
    manifest = _project_deploy(server, files)
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    older = CountingTransport(batches=False)
    with ApiClient(server.url, server.admin_token, transport=older) as client:
        tree = trees.materialize(manifest, client)
    assert {path: (tree / path).read_bytes() for path in files} == files
    assert older.count("POST /api/v1/blobs/batch") == 1  # asked once, then not again
    assert older.count("GET /api/v1/blobs/") == 3


def test_a_corrupt_blob_leaves_no_tree(server: Server, tmp_path: Path) -> None:
    data = b"a = 1\n" + unique().encode()
    manifest = _project_deploy(server, {"include/a.py": data})
    # The server's copy goes bad on its disk (same size, other bytes).
    stored = server.stored_blob_files()[manifest.entries[0].sha256]
    os.chmod(stored, 0o600)
    stored.write_bytes(bytes(len(data)))
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    with (
        ApiClient(server.url, server.admin_token) as client,
        pytest.raises(AgentError, match="hash to something else"),
    ):
        trees.materialize(manifest, client)
    assert list(home.projects.iterdir()) == []
    assert list(home.tmp.iterdir()) == []
    assert list(home.blobs.glob("*/*")) == []


def test_trees_and_blobs_not_kept_are_removed(server: Server, tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    manifests = [
        _project_deploy(server, {"include/v.py": f"v = {i}\n{unique()}".encode()}) for i in range(3)
    ]
    with ApiClient(server.url, server.admin_token) as client:
        for manifest in manifests:
            trees.materialize(manifest, client)
    keep = {manifests[1].version, manifests[2].version}
    removed = trees.prune(keep)
    assert removed == [manifests[0].version]
    assert {p.name for p in home.projects.iterdir()} == keep
    blobs = {p.name for p in home.blobs.glob("??/*")}
    assert blobs == manifests[1].digests() | manifests[2].digests()


def test_a_manifest_that_does_not_match_its_version_is_refused() -> None:
    current = ProjectCurrentOut(
        deployment="d",
        version="sha256-" + "0" * 64,
        deploy_id="x",
        seq=1,
        files=[],
    )
    with pytest.raises(AgentError, match="does not match"):
        manifest_of(current)


def test_agent_ids_differ_by_home_and_stay_the_same_for_one(tmp_path: Path) -> None:
    one, two = agent_id(tmp_path / "a"), agent_id(tmp_path / "b")
    assert one != two
    assert one == agent_id(tmp_path / "a")
