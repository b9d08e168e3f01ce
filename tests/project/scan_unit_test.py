"""dagship.project directly: scan_project and git_info (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dagship.project.errors import ProjectError
from dagship.project.git import git_info
from dagship.project.scan import scan_project
from tests.helpers import git, make_project, sha256, write


def test_scan_splits_dags_and_project(project: Path) -> None:
    scanned = scan_project(project)
    assert {e.path for e in scanned.dags.manifest.entries} == {"dag_0.py", "dag_1.py", "dag_2.py"}
    prj = {e.path for e in scanned.project.manifest.entries}
    assert {"requirements.txt", "Dockerfile", "include/helpers.py"} <= prj
    assert not any(p.startswith("dags/") for p in prj)
    for e in scanned.dags.manifest.entries:
        assert e.sha256 == sha256((project / "dags" / e.path).read_bytes())


def test_scan_nested_gitignore_and_dagshipignore(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    write(root, ".gitignore", "*.tmp\n")
    write(root, "include/.gitignore", "local/\n")
    write(root, ".dagshipignore", "!include/keep.tmp\ndags/drafts/\n")
    for rel in (
        "a.tmp",
        "include/keep.tmp",
        "include/local/x.py",
        "local/y.py",
        "dags/drafts/d.py",
        "dags/real.py",
        ".env",
        "dags/__pycache__/c.pyc",
    ):
        write(root, rel, rel)
    scanned = scan_project(root)
    prj = {e.path for e in scanned.project.manifest.entries}
    dags = {e.path for e in scanned.dags.manifest.entries}
    assert "a.tmp" not in prj
    assert "include/keep.tmp" in prj
    assert "include/local/x.py" not in prj
    assert "local/y.py" in prj
    assert ".env" not in prj
    assert "real.py" in dags and "drafts/d.py" not in dags
    assert not any("__pycache__" in p for p in dags)


def test_scan_escaping_symlink_names_it(project: Path, tmp_path: Path) -> None:
    (project / "dags" / "escape.py").symlink_to(write(tmp_path, "out.py", "x"))
    with pytest.raises(ProjectError, match=re.escape("dags/escape.py")):
        scan_project(project)


def test_scan_broken_symlink_names_it(project: Path) -> None:
    (project / "include" / "broken").symlink_to(project / "nowhere")
    with pytest.raises(ProjectError, match=re.escape("include/broken")):
        scan_project(project)


def test_scan_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        scan_project(tmp_path / "absent")


def test_git_info(project: Path, tmp_path: Path) -> None:
    assert git_info(project).sha is None
    git(project, "init", "-q", "-b", "main")
    assert git_info(project).sha is None, "no commit yet"
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "first commit")
    info = git_info(project)
    assert info.sha == git(project, "rev-parse", "HEAD")
    assert (info.branch, info.message) == ("main", "first commit")
    assert info.author is not None and "ada@example.com" in info.author
    git(project, "checkout", "-q", "--detach")
    assert (git_info(project).sha, git_info(project).branch) == (info.sha, None)
