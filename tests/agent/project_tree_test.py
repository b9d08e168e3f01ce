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
from tests.helpers import Server, unique


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
    fetched: list[str] = []
    with ApiClient(server.url, server.admin_token) as client:

        def fetch(digest: str) -> bytes:
            fetched.append(digest)
            return client.get_blob(digest)

        tree = trees.materialize(manifest, fetch)
        assert tree == home.projects / manifest.version
        for path, data in files.items():
            assert (tree / path).read_bytes() == data
            # Read-only, hard-linked from the blob cache.
            assert not os.stat(tree / path).st_mode & stat.S_IWUSR
            assert os.stat(tree / path).st_nlink == 2
        assert len(fetched) == 3
        # Again: the tree is there, nothing is fetched or rebuilt.
        assert trees.materialize(manifest, fetch) == tree
        assert len(fetched) == 3
    assert list(home.tmp.iterdir()) == []


def test_a_corrupt_blob_leaves_no_tree(server: Server, tmp_path: Path) -> None:
    manifest = _project_deploy(server, {"include/a.py": b"a = 1\n" + unique().encode()})
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    with pytest.raises(AgentError, match="corrupt"):
        trees.materialize(manifest, lambda digest: b"not the content")
    assert list(home.projects.iterdir()) == []
    assert list(home.tmp.iterdir()) == []


def test_trees_and_blobs_not_kept_are_removed(server: Server, tmp_path: Path) -> None:
    home = AgentHome(tmp_path / "agent")
    home.prepare()
    trees = ProjectTrees(home)
    manifests = [
        _project_deploy(server, {"include/v.py": f"v = {i}\n{unique()}".encode()}) for i in range(3)
    ]
    with ApiClient(server.url, server.admin_token) as client:
        for manifest in manifests:
            trees.materialize(manifest, client.get_blob)
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
