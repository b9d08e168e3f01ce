"""`dagship ci detect`: what dagship reads from a CI build, and where it would deploy."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Cli, git, make_project, write

GITLAB_MR = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_IID": "12",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "release/3",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
    "CI_COMMIT_SHA": "abc123",
}


def test_detect_shows_the_build_and_its_deployment(tmp_path: Path) -> None:
    write(tmp_path, "dagship.yaml", "deployments:\n  main: prod\n  release/*: staging\n")
    cli = Cli(None, None)
    body = cli("ci", "detect", tmp_path, "--json", env=GITLAB_MR).ok().json()
    assert body == {
        "system": "gitlab",
        "name": "GitLab CI",
        "branch": "release/3",
        "event": "pull_request",
        "pull_request": True,
        "pr_number": "12",
        "sha": "abc123",
        "dirty": None,
        "target_branch": "main",
        "tag": None,
        "deployment": "staging",
        "reason": None,
    }
    human = cli("ci", "detect", tmp_path, env=GITLAB_MR).ok().out
    assert "GitLab CI" in human and "pull_request #12" in human and "staging" in human


def test_detect_outside_ci_says_why_nothing_would_deploy(tmp_path: Path) -> None:
    write(tmp_path, "dagship.yaml", "deployments:\n  main: prod\n")
    body = Cli(None, None)("ci", "detect", tmp_path, "--json").ok().json()
    assert body["system"] is None and body["deployment"] is None
    assert "cannot tell which branch" in body["reason"]


def test_detect_shows_the_commit_of_the_repository(tmp_path: Path) -> None:
    # Outside CI the commit deployed is git's HEAD; the CI system's commit is only a fallback.
    project = make_project(tmp_path / "repo")
    write(project, "dagship.yaml", "deployments:\n  main: prod\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "First")
    head = git(project, "rev-parse", "HEAD")
    cli = Cli(None, None)
    body = cli("ci", "detect", project, "--json").ok().json()
    assert (body["sha"], body["dirty"], body["branch"], body["deployment"]) == (
        head,
        False,
        "main",
        "prod",
    )
    assert f"commit        {head}\n" in cli("ci", "detect", project).ok().out
    write(project, "dags/dag_0.py", "# edited\n")
    assert f"commit        {head} (dirty)" in cli("ci", "detect", project).ok().out
