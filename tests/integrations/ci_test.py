"""CI build detection: each system's documented variables, as that system sets them."""

from __future__ import annotations

import pytest

from dagship.integrations.ci import CiBuild, branch_from_ref, detect

SHA = "0123456789abcdef0123456789abcdef01234567"

# (system, environment, expected build) for push, pull request and tag builds of each system.
CASES: list[tuple[str, dict[str, str], CiBuild]] = [
    (
        "github push",
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/release/2.1",
            "GITHUB_REF_NAME": "release/2.1",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_SHA": SHA,
        },
        CiBuild("github", "release/2.1", "push", sha=SHA),
    ),
    (
        "github pull request",
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_REF": "refs/pull/42/merge",
            "GITHUB_REF_NAME": "42/merge",
            "GITHUB_HEAD_REF": "feature/ABC-12 fix",
            "GITHUB_BASE_REF": "main",
            "GITHUB_SHA": SHA,
        },
        CiBuild("github", "feature/ABC-12 fix", "pull_request", "42", SHA, "main"),
    ),
    (
        "github tag",
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/tags/v1.2",
            "GITHUB_REF_NAME": "v1.2",
            "GITHUB_REF_TYPE": "tag",
            "GITHUB_SHA": SHA,
        },
        CiBuild("github", None, "tag", sha=SHA, tag="v1.2"),
    ),
    (
        "gitlab push",
        {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_BRANCH": "develop",
            "CI_COMMIT_REF_NAME": "develop",
            "CI_COMMIT_SHA": SHA,
        },
        CiBuild("gitlab", "develop", "push", sha=SHA),
    ),
    (
        "gitlab merge request",
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_COMMIT_REF_NAME": "feature/x",
            "CI_MERGE_REQUEST_IID": "7",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/x",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_COMMIT_SHA": SHA,
        },
        CiBuild("gitlab", "feature/x", "pull_request", "7", SHA, "main"),
    ),
    (
        "gitlab tag",
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "push",
            "CI_COMMIT_TAG": "v3",
            "CI_COMMIT_REF_NAME": "v3",
            "CI_COMMIT_SHA": SHA,
        },
        CiBuild("gitlab", None, "tag", sha=SHA, tag="v3"),
    ),
    (
        "jenkins multibranch",
        {"JENKINS_URL": "http://jenkins/", "BRANCH_NAME": "main", "GIT_COMMIT": SHA},
        CiBuild("jenkins", "main", "push", sha=SHA),
    ),
    (
        "jenkins change request",
        {
            "JENKINS_URL": "http://jenkins/",
            "BRANCH_NAME": "PR-9",
            "CHANGE_ID": "9",
            "CHANGE_BRANCH": "feature/y",
            "CHANGE_TARGET": "develop",
            "GIT_COMMIT": SHA,
        },
        CiBuild("jenkins", "feature/y", "pull_request", "9", SHA, "develop"),
    ),
    (
        "jenkins freestyle (git plugin)",
        {"JENKINS_URL": "http://jenkins/", "GIT_BRANCH": "origin/release/1", "GIT_COMMIT": SHA},
        CiBuild("jenkins", "release/1", "push", sha=SHA),
    ),
    (
        "jenkins tag",
        {"JENKINS_URL": "http://jenkins/", "BRANCH_NAME": "v1", "TAG_NAME": "v1"},
        CiBuild("jenkins", None, "tag", tag="v1"),
    ),
    (
        "bitbucket push",
        {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "12",
            "BITBUCKET_BRANCH": "main",
            "BITBUCKET_COMMIT": SHA,
        },
        CiBuild("bitbucket", "main", "push", sha=SHA),
    ),
    (
        "bitbucket pull request",
        {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "13",
            "BITBUCKET_BRANCH": "feature/z",
            "BITBUCKET_PR_ID": "5",
            "BITBUCKET_PR_DESTINATION_BRANCH": "main",
            "BITBUCKET_COMMIT": SHA,
        },
        CiBuild("bitbucket", "feature/z", "pull_request", "5", SHA, "main"),
    ),
    (
        "bitbucket tag",
        {"BITBUCKET_BUILD_NUMBER": "14", "BITBUCKET_TAG": "v2", "BITBUCKET_COMMIT": SHA},
        CiBuild("bitbucket", None, "tag", sha=SHA, tag="v2"),
    ),
    (
        "azure push (full ref, nested branch)",
        {
            "TF_BUILD": "True",
            "BUILD_REASON": "IndividualCI",
            "BUILD_SOURCEBRANCH": "refs/heads/release/2.0",
            "BUILD_SOURCEBRANCHNAME": "2.0",
            "BUILD_SOURCEVERSION": SHA,
        },
        CiBuild("azure", "release/2.0", "push", sha=SHA),
    ),
    (
        "azure pull request (Azure Repos: full refs)",
        {
            "TF_BUILD": "True",
            "BUILD_REASON": "PullRequest",
            "BUILD_SOURCEBRANCH": "refs/pull/31/merge",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "31",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/feature/q",
            "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
            "BUILD_SOURCEVERSION": SHA,
        },
        CiBuild("azure", "feature/q", "pull_request", "31", SHA, "main"),
    ),
    (
        "azure pull request (GitHub: number, short names)",
        {
            "TF_BUILD": "True",
            "BUILD_REASON": "PullRequest",
            "SYSTEM_PULLREQUEST_PULLREQUESTID": "123456789",
            "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "77",
            "SYSTEM_PULLREQUEST_SOURCEBRANCH": "feature/q",
            "SYSTEM_PULLREQUEST_TARGETBRANCH": "main",
        },
        CiBuild("azure", "feature/q", "pull_request", "77", None, "main"),
    ),
    (
        "azure tag",
        {"TF_BUILD": "True", "BUILD_REASON": "IndividualCI", "BUILD_SOURCEBRANCH": "refs/tags/v9"},
        CiBuild("azure", None, "tag", tag="v9"),
    ),
    (
        "circleci push",
        {"CI": "true", "CIRCLECI": "true", "CIRCLE_BRANCH": "develop", "CIRCLE_SHA1": SHA},
        CiBuild("circleci", "develop", "push", sha=SHA),
    ),
    (
        "circleci branch with an open pull request",
        {
            "CIRCLECI": "true",
            "CIRCLE_BRANCH": "feature/c",
            "CIRCLE_PULL_REQUEST": "https://github.com/acme/dags/pull/8",
            "CIRCLE_SHA1": SHA,
        },
        CiBuild("circleci", "feature/c", "pull_request", "8", SHA),
    ),
    (
        "circleci tag",
        {"CIRCLECI": "true", "CIRCLE_TAG": "v4", "CIRCLE_SHA1": SHA},
        CiBuild("circleci", None, "tag", sha=SHA, tag="v4"),
    ),
    (
        "codebuild webhook push",
        {
            "CODEBUILD_BUILD_ID": "proj:1",
            "CODEBUILD_WEBHOOK_EVENT": "PUSH",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/release/5",
            "CODEBUILD_WEBHOOK_TRIGGER": "branch/release/5",
            "CODEBUILD_SOURCE_VERSION": SHA,
            "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA,
        },
        CiBuild("codebuild", "release/5", "push", sha=SHA),
    ),
    (
        "codebuild webhook pull request",
        {
            "CODEBUILD_BUILD_ID": "proj:2",
            "CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_UPDATED",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/w",
            "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main",
            "CODEBUILD_WEBHOOK_TRIGGER": "pr/15",
            "CODEBUILD_SOURCE_VERSION": "pr/15",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA,
        },
        CiBuild("codebuild", "feature/w", "pull_request", "15", SHA, "main"),
    ),
    (
        "codebuild webhook tag",
        {
            "CODEBUILD_BUILD_ID": "proj:3",
            "CODEBUILD_WEBHOOK_EVENT": "PUSH",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/tags/v6",
            "CODEBUILD_WEBHOOK_TRIGGER": "tag/v6",
        },
        CiBuild("codebuild", None, "tag", tag="v6"),
    ),
    (
        "codebuild started by hand on a branch",
        {"CODEBUILD_BUILD_ID": "proj:4", "CODEBUILD_SOURCE_VERSION": "develop"},
        CiBuild("codebuild", "develop", "other"),
    ),
    (
        "codebuild started on a commit (no branch)",
        {"CODEBUILD_BUILD_ID": "proj:5", "CODEBUILD_SOURCE_VERSION": SHA},
        CiBuild("codebuild", None, "other", sha=SHA),
    ),
    (
        "cloudbuild push trigger",
        {
            "BUILD_ID": "b-1",
            "PROJECT_ID": "acme",
            "BRANCH_NAME": "main",
            "TAG_NAME": "",
            "COMMIT_SHA": SHA,
            "_PR_NUMBER": "",
        },
        CiBuild("cloudbuild", "main", "push", sha=SHA),
    ),
    (
        "cloudbuild pull request trigger",
        {
            "BUILD_ID": "b-2",
            "PROJECT_ID": "acme",
            "BRANCH_NAME": "feature/v",
            "COMMIT_SHA": SHA,
            "_PR_NUMBER": "21",
            "_HEAD_BRANCH": "feature/v",
            "_BASE_BRANCH": "main",
        },
        CiBuild("cloudbuild", "feature/v", "pull_request", "21", SHA, "main"),
    ),
    (
        "cloudbuild tag trigger",
        {"BUILD_ID": "b-3", "PROJECT_ID": "acme", "TAG_NAME": "v7", "COMMIT_SHA": SHA},
        CiBuild("cloudbuild", None, "tag", sha=SHA, tag="v7"),
    ),
    (
        "drone push",
        {
            "CI": "true",
            "DRONE": "true",
            "DRONE_BUILD_EVENT": "push",
            "DRONE_BRANCH": "develop",
            "DRONE_COMMIT_SHA": SHA,
        },
        CiBuild("drone", "develop", "push", sha=SHA),
    ),
    (
        # On a pull request DRONE_BRANCH is the target: the source branch is built.
        "drone pull request",
        {
            "DRONE": "true",
            "DRONE_BUILD_EVENT": "pull_request",
            "DRONE_BRANCH": "main",
            "DRONE_SOURCE_BRANCH": "feature/u",
            "DRONE_TARGET_BRANCH": "main",
            "DRONE_PULL_REQUEST": "3",
            "DRONE_COMMIT_SHA": SHA,
        },
        CiBuild("drone", "feature/u", "pull_request", "3", SHA, "main"),
    ),
    (
        "drone tag",
        {"DRONE": "true", "DRONE_BUILD_EVENT": "tag", "DRONE_TAG": "v8", "DRONE_COMMIT_SHA": SHA},
        CiBuild("drone", None, "tag", sha=SHA, tag="v8"),
    ),
]


@pytest.mark.parametrize(("env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_detect(env: dict[str, str], expected: CiBuild) -> None:
    assert detect(env) == expected


def test_every_system_is_covered_for_push_pull_request_and_tag() -> None:
    seen = {(c[2].system, c[2].event) for c in CASES}
    for system in ("github", "gitlab", "jenkins", "bitbucket", "azure", "circleci"):
        assert {(system, "push"), (system, "pull_request"), (system, "tag")} <= seen
    for system in ("codebuild", "cloudbuild", "drone"):
        assert {(system, "push"), (system, "pull_request"), (system, "tag")} <= seen


def test_outside_ci() -> None:
    assert detect({"HOME": "/root", "PATH": "/bin"}) == CiBuild()
    assert not detect({}).in_ci


def test_unknown_ci_system_is_ci_without_a_branch() -> None:
    build = detect({"CI": "true"})
    assert build.in_ci and build.system == "other" and build.branch is None


def test_cloudbuild_needs_its_substitutions() -> None:
    # BUILD_ID and PROJECT_ID alone are too common to mean Cloud Build.
    assert not detect({"BUILD_ID": "1", "PROJECT_ID": "p"}).in_ci


def test_a_system_container_inside_jenkins_is_that_system() -> None:
    env = {"JENKINS_URL": "http://j/", "GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main"}
    assert detect(env).system == "gitlab"


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        ("refs/heads/main", "main"),
        ("refs/heads/feature/a/b", "feature/a/b"),
        ("main", "main"),
        ("refs/tags/v1", None),
        ("refs/pull/1/merge", None),
        ("", None),
        (None, None),
    ],
)
def test_branch_from_ref(ref: str | None, branch: str | None) -> None:
    assert branch_from_ref(ref) == branch
