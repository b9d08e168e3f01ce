"""A new version's tree made from a retired tree in place (dagship.airflow.reuse), against a
real dagship server: the same tree a full build makes, at the cost of the change."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.bundle_test import (
    LOGGER,
    Files,
    airflow_env,  # noqa: F401 (the module's Airflow folders)
    deploy,
    expected,
    make_bundle,
    refresh_until,
    setup_deployment,
    snapshot,
    srv,  # noqa: F401 (the server fixture)
    token_env,  # noqa: F401 (the token fixture)
    trees,
    version_of_bundle,
    wait_connected,
    wait_for_tree,
)
from tests.helpers import Api, Server

with pytest.MonkeyPatch.context() as _mp:
    from dagship.airflow.bundle import DagshipDagBundle

OLD_NS = time.time_ns() - 3600 * 10**9


def layout(root: Path) -> tuple[set[str], set[str]]:
    """The files and the folders under ``root``."""
    files, folders = set(), set()
    for path in root.rglob("*"):
        (folders if path.is_dir() else files).add(path.relative_to(root).as_posix())
    return files, folders


def folders_of(files: Files) -> set[str]:
    found = set()
    for path in files:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


def age(root: Path) -> dict[str, tuple[int, int]]:
    """Give every file of the tree an old mtime; return each one's (inode, mtime)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)
            found[path.relative_to(root).as_posix()] = (path.stat().st_ino, OLD_NS)
    return found


def current_tree(bundle: DagshipDagBundle) -> Path:
    return bundle.path.resolve()


def spare_of(bundle: DagshipDagBundle) -> Path:
    """The tree the next version is made from: neither the current tree nor the one before."""
    links = {Path(os.readlink(link)).name for link in (bundle.current_link, bundle.previous_link)}
    names = [n for n in trees(bundle) if n not in links]
    assert len(names) == 1, (trees(bundle), links)
    return bundle.trees_dir / names[0]


def deploy_and_check(
    api: Api, name: str, bundle: DagshipDagBundle, before: Files, after: Files
) -> None:
    """Deploy ``after`` over ``before``; check the new tree is exactly ``after``, unchanged
    files kept their inode and mtime, changed and added ones are new inodes written now, and
    the tree it replaced is untouched."""
    replaced = current_tree(bundle)
    old = age(replaced)
    start = time.time_ns()
    version = deploy(api, name, after)
    bundle.refresh()
    assert version_of_bundle(bundle) == version
    # The tree replaced stays as it was, for a parse that resolved its path before the switch.
    assert snapshot(replaced) == expected(before)
    root = current_tree(bundle)
    assert snapshot(root) == expected(after)
    assert layout(root) == (set(after), folders_of(after))
    was, now = expected(before), expected(after)
    for path, value in now.items():
        st = (root / path).stat()
        if was.get(path) == value:
            assert (st.st_ino, st.st_mtime_ns) == old[path], path
        else:
            assert st.st_mtime_ns >= start, path
            assert path not in old or st.st_ino != old[path][0], path


def following(srv: Server, token_env: Any, files: Files) -> tuple[Api, str, DagshipDagBundle]:  # noqa: F811
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, files)
    bundle = make_bundle(srv, name)
    bundle.initialize()
    return api, name, bundle


def with_a_spare(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> tuple[Api, str, DagshipDagBundle, Files]:
    """A bundle following V1 through two one-file deploys, so that it has a spare tree; the
    files of its current version."""
    api, name, bundle = following(srv, token_env, V1)
    files = dict(V1)
    for i in range(2):
        after = {**files, "dag_b.py": f"b = step {i}\n".encode()}
        deploy_and_check(api, name, bundle, files, after)
        files = after
    return api, name, bundle, files


V1: Files = {
    "dag_a.py": b"a = 1\n",
    "dag_b.py": b"b = 1\n",
    "pkg/__init__.py": b"",
    "pkg/deep/helpers.py": b"X = 1\n",
    "old/only.py": b"gone soon\n",
    "scripts/run.sh": (b"#!/bin/sh\necho hi\n", True),
    "scripts/plain.sh": b"#!/bin/sh\n",
    "same_1.py": b"same\n",
    "same_2.py": b"same\n",
}


def test_a_deploy_updates_the_spare_tree_in_place(srv: Server, token_env: Any) -> None:  # noqa: F811
    api, name, bundle = following(srv, token_env, V1)
    v2 = {**V1, "dag_a.py": b"a = 2\n"}
    v3 = {**v2, "dag_b.py": b"b = 3\n"}
    deploy_and_check(api, name, bundle, V1, v2)
    deploy_and_check(api, name, bundle, v2, v3)
    assert len(trees(bundle)) == 3  # the current tree, the one before, the spare
    spare = spare_of(bundle)
    spare_inode = spare.stat().st_ino
    # Removed files and their emptied folders, a file turned folder, a new folder, executable
    # bits on and off, an edit, and a file back to content cached long ago.
    v4: Files = {
        **{p: v for p, v in v3.items() if p != "old/only.py"},
        "dag_b.py": b"b = 4\n",
        "dag_a.py": b"a = 1\n",
        "scripts/run.sh": b"#!/bin/sh\necho hi\n",
        "scripts/plain.sh": (b"#!/bin/sh\n", True),
        "new/deeper/dag_c.py": b"c = 1\n",
        "same_3.py": b"same\n",
    }
    deploy_and_check(api, name, bundle, v3, v4)
    # The new tree is the spare's folder, renamed: only what changed was written.
    assert current_tree(bundle).stat().st_ino == spare_inode
    assert not spare.exists()
    assert list(bundle.tmp_dir.iterdir()) == []
    v5 = {**{p: v for p, v in v4.items() if p != "dag_a.py"}, "dag_a.py/inner.py": b"x\n"}
    spare_inode = spare_of(bundle).stat().st_ino
    deploy_and_check(api, name, bundle, v4, v5)
    assert current_tree(bundle).stat().st_ino == spare_inode
    v6 = {**{p: v for p, v in v5.items() if not p.startswith("dag_a.py")}, "dag_a.py": b"a\n"}
    deploy_and_check(api, name, bundle, v5, v6)


def test_many_deploys_in_a_row_each_give_exactly_their_files(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> None:
    api, name, bundle = following(srv, token_env, V1)
    files = dict(V1)
    for i in range(12):
        spare = spare_of(bundle).stat().st_ino if i >= 2 else None
        after = dict(files)
        after[f"team_{i % 3}/dag_{i}.py"] = f"dag {i}\n".encode()  # added
        after["dag_b.py"] = f"b = {i}\n".encode()  # changed
        if i % 4 == 1:
            after.pop(f"team_{(i - 1) % 3}/dag_{i - 1}.py")  # removed
        if i % 3 == 2:
            after["scripts/run.sh"] = (b"#!/bin/sh\necho hi\n", bool(i % 2))  # exec bit
        if i % 5 == 4:
            after["dag_a.py"] = V1["dag_a.py"] if i % 2 else b"a = other\n"
        deploy_and_check(api, name, bundle, files, after)
        files = after
        # From the third deploy on, each tree is made from the spare.
        assert spare is None or current_tree(bundle).stat().st_ino == spare
    assert len(trees(bundle)) == 3


def test_a_rollback_gets_fresh_files_from_its_own_old_tree(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> None:
    api, name, bundle = following(srv, token_env, V1)
    v2 = {**V1, "dag_a.py": b"a = 2\n", "new.py": b"n\n"}
    v3 = {**v2, "dag_b.py": b"b = 3\n"}
    v1_tree = current_tree(bundle)
    v1_inode = v1_tree.stat().st_ino
    deploy_and_check(api, name, bundle, V1, v2)
    deploy_and_check(api, name, bundle, v2, v3)
    # The spare now is V1's own tree: going back to V1 reuses it, yet dag_a.py and dag_b.py
    # must look changed to Airflow (new inodes, fresh mtimes), and new.py goes.
    deploy_and_check(api, name, bundle, v3, V1)
    assert current_tree(bundle).stat().st_ino == v1_inode
    assert current_tree(bundle) != v1_tree and not v1_tree.exists()


def test_a_spare_changed_on_disk_is_repaired_and_a_missing_one_means_a_full_build(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> None:
    api, name, bundle, files = with_a_spare(srv, token_env)
    # What the spare holds is read from disk: a file taken out, a stray file and folder, the
    # bytecode Python wrote beside the files while the tree was current, a file replaced by
    # another inode of the same content.
    spare = spare_of(bundle)
    (spare / "pkg/deep/helpers.py").unlink()
    (spare / "pkg/deep/extra.py").write_bytes(b"stray\n")
    (spare / "stray/deeper").mkdir(parents=True)
    (spare / "stray/deeper/x.py").write_bytes(b"x\n")
    (spare / "pkg/__pycache__").mkdir()
    (spare / "pkg/__pycache__/__init__.cpython-311.pyc").write_bytes(b"old bytecode")
    replaced = spare / "same_1.py"
    replaced.unlink()
    replaced.write_bytes(b"same\n")
    spare_inode = spare.stat().st_ino
    after = {**files, "dag_b.py": b"b = repaired\n"}
    deploy_and_check(api, name, bundle, files, after)
    assert current_tree(bundle).stat().st_ino == spare_inode
    files = after
    # The spare gone: a full build.
    shutil.rmtree(spare_of(bundle))
    after = {**files, "dag_b.py": b"b = missing\n"}
    deploy_and_check(api, name, bundle, files, after)
    files = after
    # A fresh instance (a restart) finds the spare through the links on disk.
    restarted = make_bundle(srv, name, name=bundle.name)
    restarted.initialize()
    for i in range(3):
        spare_inode = spare_of(restarted).stat().st_ino
        after = {**files, "dag_b.py": f"b = restart {i}\n".encode()}
        deploy_and_check(api, name, restarted, files, after)
        assert current_tree(restarted).stat().st_ino == spare_inode
        files = after


def test_a_failure_while_updating_falls_back_to_a_full_build(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dagship.airflow import bundle as bundle_module

    api, name, bundle, files = with_a_spare(srv, token_env)
    spare = spare_of(bundle)
    real_update = bundle_module.update

    def failing(plan: Any, root: Path, *args: Any) -> set[str]:
        (root / "dag_a.py").unlink()  # half done, then a failure (a full disk, say)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_module, "update", failing)
    after = {**files, "dag_b.py": b"b = fails\n"}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        deploy_and_check(api, name, bundle, files, after)
    assert any("building it anew" in r.getMessage() for r in caplog.records)
    assert not spare.exists()
    assert list(bundle.tmp_dir.iterdir()) == []
    monkeypatch.setattr(bundle_module, "update", real_update)
    files = after
    for i in range(3):
        after = {**files, "dag_b.py": f"b = again {i}\n".encode()}
        deploy_and_check(api, name, bundle, files, after)
        files = after


def test_a_build_killed_halfway_is_cleared_by_the_next_start(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> None:
    api, name, bundle, files = with_a_spare(srv, token_env)
    # What a kill leaves: the spare moved into tmp/ and half updated.
    spare = spare_of(bundle)
    staging = bundle.tmp_dir / "killed"
    bundle.tmp_dir.mkdir(exist_ok=True)
    os.rename(spare, staging)
    (staging / "dag_a.py").unlink()
    restarted = make_bundle(srv, name, name=bundle.name)
    restarted.initialize()
    assert snapshot(restarted.path) == expected(files)
    after = {**files, "dag_b.py": b"b = after the kill\n"}
    deploy_and_check(api, name, restarted, files, after)
    assert list(restarted.tmp_dir.iterdir()) == []


def test_the_listener_makes_each_version_from_the_spare_before_refresh(
    srv: Server,  # noqa: F811
    token_env: Any,  # noqa: F811
) -> None:
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, V1)
    bundle = make_bundle(srv, name, listen=True)
    bundle.initialize()
    wait_connected(bundle)
    files = dict(V1)
    for i in range(4):
        spare = spare_of(bundle).stat().st_ino if i >= 2 else None
        replaced = current_tree(bundle)
        after = {**files, "dag_b.py": f"b = listened {i}\n".encode(), f"new_{i}.py": b"n\n"}
        version = deploy(api, name, after)
        built = wait_for_tree(bundle, version)
        assert spare is None or built.stat().st_ino == spare
        assert snapshot(built) == expected(after)
        assert snapshot(bundle.path) == expected(files)  # Airflow still sees the old version
        refresh_until(bundle, version)
        assert current_tree(bundle) == built.resolve()
        assert snapshot(replaced) == expected(files)
        files = after
