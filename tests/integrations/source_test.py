"""build_source: git's commit and the CI system's variables, combined in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dagship.integrations.source import build_source
from tests.helpers import git, make_project, write

GITHUB = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "repo")
    git(root, "init", "-q", "-b", "work")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Add the DAGs\n\nWith a body.")
    return root


def test_outside_ci_the_branch_is_the_one_checked_out(repo: Path) -> None:
    source = build_source(repo, {})
    assert source.sha == git(repo, "rev-parse", "HEAD")
    assert (source.branch, source.branch_source, source.tag) == ("work", "git", None)
    assert source.message == "Add the DAGs\n\nWith a body."
    assert source.author == "Ada Author <ada@example.com>"
    assert not source.ci.in_ci


def test_a_detached_head_outside_ci_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    source = build_source(repo, {})
    assert (source.branch, source.branch_source) == (None, None)
    assert source.sha == git(repo, "rev-parse", "HEAD")


def test_ci_names_the_branch_of_a_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    env = {**GITHUB, "GITHUB_REF": "refs/heads/release/2", "GITHUB_REF_NAME": "release/2"}
    source = build_source(repo, env)
    assert (source.branch, source.branch_source) == ("release/2", "github")
    assert source.ci.system == "github"


def test_ci_branch_wins_over_the_one_checked_out(repo: Path) -> None:
    # The branch a deploy records is the one `--branch auto` maps to a deployment.
    env = {**GITHUB, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"}
    assert build_source(repo, env).branch == "main"


def test_a_tag_build_has_a_tag_and_no_branch(repo: Path) -> None:
    git(repo, "tag", "v1.2")
    git(repo, "checkout", "-q", "v1.2")
    env = {
        **GITHUB,
        "GITHUB_REF": "refs/tags/v1.2",
        "GITHUB_REF_NAME": "v1.2",
        "GITHUB_REF_TYPE": "tag",
    }
    source = build_source(repo, env)
    assert (source.branch, source.branch_source, source.tag) == (None, None, "v1.2")
    assert source.sha == git(repo, "rev-parse", "HEAD")
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_TAG": "v1.2", "CI_COMMIT_REF_NAME": "v1.2"}
    assert (build_source(repo, gitlab).branch, build_source(repo, gitlab).tag) == (None, "v1.2")


def test_an_unknown_ci_system_falls_back_to_git(repo: Path) -> None:
    source = build_source(repo, {"CI": "true"})
    assert (source.ci.system, source.branch, source.branch_source) == ("other", "work", "git")


def test_outside_git_the_commit_is_the_ci_systems(tmp_path: Path) -> None:
    env = {**GITHUB, "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "a" * 40}
    source = build_source(tmp_path, env)
    assert (source.sha, source.branch, source.author, source.message) == (
        "a" * 40,
        "main",
        None,
        None,
    )
    assert build_source(tmp_path, {}).sha is None


def test_a_clean_checkout_is_not_dirty(repo: Path) -> None:
    assert build_source(repo, {}).dirty is False


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda root: write(root, "dags/dag_0.py", "# edited\n"), id="edited"),
        pytest.param(lambda root: write(root, "include/new.sql", "select 1\n"), id="new-file"),
        pytest.param(lambda root: (root / "dags" / "dag_0.py").unlink(), id="deleted"),
        pytest.param(
            lambda root: (write(root, "dags/dag_0.py", "# staged\n"), git(root, "add", "-A")),
            id="staged",
        ),
    ],
)
def test_uncommitted_changes_make_the_source_dirty(repo: Path, change: Any) -> None:
    change(repo)
    source = build_source(repo, {})
    assert (source.sha, source.dirty) == (git(repo, "rev-parse", "HEAD"), True)


def test_files_git_ignores_and_other_folders_do_not_count(tmp_path: Path) -> None:
    # A monorepo: the project is one folder; only its files are deployed.
    root = tmp_path / "mono"
    project = make_project(root / "airflow")
    write(root, ".gitignore", "*.log\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "One repository, two folders")
    write(root, "web/app.js", "// not deployed\n")
    write(project, "dags/run.log", "ignored by git\n")
    assert build_source(project, {}).dirty is False
    assert build_source(root, {}).dirty is True


def test_outside_git_dirty_is_unknown(tmp_path: Path) -> None:
    assert build_source(tmp_path, {}).dirty is None
