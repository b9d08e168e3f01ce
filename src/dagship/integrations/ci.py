"""What a CI system says about the build it runs: which system, branch, event, PR, commit.

Each system names these in its own environment variables; ``detect`` reads them into one
``CiBuild``. This module is the only reader of those variables: ``dagship.integrations.source``
combines what it reads with git's commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Event = Literal["push", "pull_request", "tag", "other"]

SYSTEM_NAMES = {
    "github": "GitHub Actions",
    "gitlab": "GitLab CI",
    "jenkins": "Jenkins",
    "bitbucket": "Bitbucket Pipelines",
    "azure": "Azure Pipelines",
    "circleci": "CircleCI",
    "codebuild": "AWS CodeBuild",
    "cloudbuild": "Google Cloud Build",
    "drone": "Drone",
}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class CiBuild:
    """One build as its CI system describes it; ``system`` is None outside CI.

    ``branch`` is the branch whose code is built: on a pull request, its source (head) branch;
    None for a tag build. ``target_branch`` is the branch a pull request merges into.
    """

    system: str | None = None
    branch: str | None = None
    event: Event = "other"
    pr_number: str | None = None
    sha: str | None = None
    target_branch: str | None = None
    tag: str | None = None

    @property
    def in_ci(self) -> bool:
        return self.system is not None

    @property
    def name(self) -> str:
        return SYSTEM_NAMES.get(self.system or "", "no CI system")

    def to_dict(self) -> dict[str, str | bool | None]:
        return {
            "system": self.system,
            "name": self.name if self.system else None,
            "branch": self.branch,
            "event": self.event,
            "pull_request": self.event == "pull_request",
            "pr_number": self.pr_number,
            "sha": self.sha,
            "target_branch": self.target_branch,
            "tag": self.tag,
        }


def detect(env: Mapping[str, str] | None = None) -> CiBuild:
    """The build described by ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    for matches, read in _DETECTORS:
        if matches(env):
            return read(env)
    if _get(env, "CI").lower() in _TRUE:
        # An unknown CI system: it is CI (deploys record origin ci) but names no branch.
        return CiBuild(system="other")
    return CiBuild()


def branch_from_ref(ref: str | None) -> str | None:
    """``refs/heads/a/b`` -> ``a/b``; a plain name stays; tags and PR refs give None."""
    if not ref:
        return None
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/") or None
    if ref.startswith("refs/"):
        return None
    return ref


# --------------------------------------------------------------------------- per system


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _opt(env: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` that is set and not empty."""
    return next((_get(env, n) for n in names if _get(env, n)), None)


def _github(env: Mapping[str, str]) -> CiBuild:
    # https://docs.github.com/actions/reference/variables-reference
    event_name = _get(env, "GITHUB_EVENT_NAME")
    ref = _get(env, "GITHUB_REF")
    if event_name.startswith("pull_request"):
        # GITHUB_REF_NAME is `123/merge` here; GITHUB_HEAD_REF is the source branch.
        number = ref.split("/")[2] if ref.startswith("refs/pull/") else None
        return CiBuild(
            "github",
            _opt(env, "GITHUB_HEAD_REF"),
            "pull_request",
            number,
            _opt(env, "GITHUB_SHA"),
            _opt(env, "GITHUB_BASE_REF"),
        )
    if _get(env, "GITHUB_REF_TYPE") == "tag" or ref.startswith("refs/tags/"):
        tag = _opt(env, "GITHUB_REF_NAME")
        return CiBuild("github", None, "tag", sha=_opt(env, "GITHUB_SHA"), tag=tag)
    branch = branch_from_ref(ref) or _opt(env, "GITHUB_REF_NAME")
    event: Event = "push" if event_name == "push" else "other"
    return CiBuild("github", branch, event, sha=_opt(env, "GITHUB_SHA"))


def _gitlab(env: Mapping[str, str]) -> CiBuild:
    # https://docs.gitlab.com/ci/variables/predefined_variables/
    sha = _opt(env, "CI_COMMIT_SHA")
    if _get(env, "CI_MERGE_REQUEST_IID") or _get(env, "CI_PIPELINE_SOURCE") in (
        "merge_request_event",
        "external_pull_request_event",
    ):
        return CiBuild(
            "gitlab",
            _opt(
                env,
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
                "CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME",
            ),
            "pull_request",
            _opt(env, "CI_MERGE_REQUEST_IID", "CI_EXTERNAL_PULL_REQUEST_IID"),
            sha,
            _opt(
                env,
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
                "CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME",
            ),
        )
    if _get(env, "CI_COMMIT_TAG"):
        return CiBuild("gitlab", None, "tag", sha=sha, tag=_get(env, "CI_COMMIT_TAG"))
    # CI_COMMIT_BRANCH is set on branch pipelines only; CI_COMMIT_REF_NAME on all of them.
    branch = _opt(env, "CI_COMMIT_BRANCH", "CI_COMMIT_REF_NAME")
    event: Event = "push" if _get(env, "CI_PIPELINE_SOURCE") in ("push", "") else "other"
    return CiBuild("gitlab", branch, event, sha=sha)


def _jenkins(env: Mapping[str, str]) -> CiBuild:
    # Multibranch pipelines: BRANCH_NAME (`PR-12` for a pull request), CHANGE_ID,
    # CHANGE_BRANCH, CHANGE_TARGET, TAG_NAME; the git plugin: GIT_COMMIT, GIT_BRANCH.
    sha = _opt(env, "GIT_COMMIT")
    if _get(env, "CHANGE_ID"):
        return CiBuild(
            "jenkins",
            _opt(env, "CHANGE_BRANCH"),
            "pull_request",
            _get(env, "CHANGE_ID"),
            sha,
            _opt(env, "CHANGE_TARGET"),
        )
    if _get(env, "TAG_NAME"):
        return CiBuild("jenkins", None, "tag", sha=sha, tag=_get(env, "TAG_NAME"))
    branch = _opt(env, "BRANCH_NAME")
    if branch is None:
        # Outside multibranch pipelines the git plugin's GIT_BRANCH names the remote too.
        branch = branch_from_ref((_opt(env, "GIT_BRANCH") or "").removeprefix("origin/"))
    return CiBuild("jenkins", branch, "push" if branch else "other", sha=sha)


def _bitbucket(env: Mapping[str, str]) -> CiBuild:
    # https://support.atlassian.com/bitbucket-cloud/docs/variables-and-secrets/
    sha = _opt(env, "BITBUCKET_COMMIT")
    if _get(env, "BITBUCKET_PR_ID"):
        return CiBuild(
            "bitbucket",
            _opt(env, "BITBUCKET_BRANCH"),
            "pull_request",
            _get(env, "BITBUCKET_PR_ID"),
            sha,
            _opt(env, "BITBUCKET_PR_DESTINATION_BRANCH"),
        )
    if _get(env, "BITBUCKET_TAG"):
        return CiBuild("bitbucket", None, "tag", sha=sha, tag=_get(env, "BITBUCKET_TAG"))
    branch = _opt(env, "BITBUCKET_BRANCH")
    return CiBuild("bitbucket", branch, "push" if branch else "other", sha=sha)


def _azure(env: Mapping[str, str]) -> CiBuild:
    # https://learn.microsoft.com/azure/devops/pipelines/build/variables: variables reach
    # scripts upper-cased with dots as underscores. BUILD_SOURCEBRANCH is a full ref
    # (refs/heads/a/b); BUILD_SOURCEBRANCHNAME keeps only its last segment, so is not used.
    sha = _opt(env, "BUILD_SOURCEVERSION")
    if _get(env, "BUILD_REASON") == "PullRequest" or _get(env, "SYSTEM_PULLREQUEST_PULLREQUESTID"):
        return CiBuild(
            "azure",
            branch_from_ref(_opt(env, "SYSTEM_PULLREQUEST_SOURCEBRANCH")),
            "pull_request",
            _opt(
                env,
                "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER",
                "SYSTEM_PULLREQUEST_PULLREQUESTID",
            ),
            sha,
            branch_from_ref(_opt(env, "SYSTEM_PULLREQUEST_TARGETBRANCH")),
        )
    ref = _get(env, "BUILD_SOURCEBRANCH")
    if ref.startswith("refs/tags/"):
        return CiBuild("azure", None, "tag", sha=sha, tag=ref.removeprefix("refs/tags/"))
    branch = branch_from_ref(ref)
    push = _get(env, "BUILD_REASON") in ("IndividualCI", "BatchedCI", "")
    return CiBuild("azure", branch, "push" if branch and push else "other", sha=sha)


def _circleci(env: Mapping[str, str]) -> CiBuild:
    # https://circleci.com/docs/variables/: CIRCLE_PULL_REQUEST is the PR's URL; the number
    # is its last segment (CIRCLE_PR_NUMBER is set for forked PRs only).
    sha = _opt(env, "CIRCLE_SHA1")
    if _get(env, "CIRCLE_TAG"):
        return CiBuild("circleci", None, "tag", sha=sha, tag=_get(env, "CIRCLE_TAG"))
    branch = _opt(env, "CIRCLE_BRANCH")
    pr_url = _get(env, "CIRCLE_PULL_REQUEST")
    number = _opt(env, "CIRCLE_PR_NUMBER") or (pr_url.rstrip("/").rsplit("/", 1)[-1] or None)
    if pr_url or _get(env, "CIRCLE_PR_NUMBER"):
        return CiBuild("circleci", branch, "pull_request", number, sha)
    return CiBuild("circleci", branch, "push" if branch else "other", sha=sha)


def _codebuild(env: Mapping[str, str]) -> CiBuild:
    # https://docs.aws.amazon.com/codebuild/latest/userguide/build-env-ref-env-vars.html
    # Webhook builds: CODEBUILD_WEBHOOK_EVENT (PUSH, PULL_REQUEST_CREATED, ...),
    # CODEBUILD_WEBHOOK_HEAD_REF (refs/heads/x), CODEBUILD_WEBHOOK_TRIGGER (branch/x, pr/12,
    # tag/v1). Builds started otherwise: CODEBUILD_SOURCE_VERSION (a branch, pr/12 or a sha).
    sha = _opt(env, "CODEBUILD_RESOLVED_SOURCE_VERSION")
    event_name = _get(env, "CODEBUILD_WEBHOOK_EVENT")
    trigger = _get(env, "CODEBUILD_WEBHOOK_TRIGGER")
    head = _get(env, "CODEBUILD_WEBHOOK_HEAD_REF")
    if event_name.startswith("PULL_REQUEST") or trigger.startswith("pr/"):
        number = trigger.removeprefix("pr/") if trigger.startswith("pr/") else None
        return CiBuild(
            "codebuild",
            branch_from_ref(head),
            "pull_request",
            number,
            sha,
            branch_from_ref(_opt(env, "CODEBUILD_WEBHOOK_BASE_REF")),
        )
    if trigger.startswith("tag/") or head.startswith("refs/tags/"):
        tag = trigger.removeprefix("tag/") if trigger.startswith("tag/") else head[10:]
        return CiBuild("codebuild", None, "tag", sha=sha, tag=tag)
    if head or trigger.startswith("branch/"):
        branch = branch_from_ref(head) or trigger.removeprefix("branch/")
        return CiBuild("codebuild", branch, "push", sha=sha)
    source = _get(env, "CODEBUILD_SOURCE_VERSION")
    if source.startswith("pr/"):
        return CiBuild("codebuild", None, "pull_request", source.removeprefix("pr/"), sha)
    if _looks_like_sha(source) or source.startswith("arn:"):
        return CiBuild("codebuild", None, "other", sha=sha or source)
    return CiBuild("codebuild", branch_from_ref(source), "other", sha=sha)


def _cloudbuild(env: Mapping[str, str]) -> CiBuild:
    # Cloud Build passes no variables to steps by itself: its trigger substitutions
    # (BRANCH_NAME, TAG_NAME, COMMIT_SHA; _HEAD_BRANCH, _BASE_BRANCH, _PR_NUMBER on pull
    # request triggers) reach dagship when the step maps them into `env:`, as the pipeline
    # `dagship ci init cloudbuild` writes does.
    sha = _opt(env, "COMMIT_SHA")
    if _get(env, "_PR_NUMBER"):
        return CiBuild(
            "cloudbuild",
            _opt(env, "_HEAD_BRANCH"),
            "pull_request",
            _get(env, "_PR_NUMBER"),
            sha,
            _opt(env, "_BASE_BRANCH"),
        )
    if _get(env, "TAG_NAME"):
        return CiBuild("cloudbuild", None, "tag", sha=sha, tag=_get(env, "TAG_NAME"))
    branch = _opt(env, "BRANCH_NAME")
    return CiBuild("cloudbuild", branch, "push" if branch else "other", sha=sha)


def _drone(env: Mapping[str, str]) -> CiBuild:
    # https://docs.drone.io/pipeline/environment/reference/: on a pull request DRONE_BRANCH
    # is the *target* branch; DRONE_SOURCE_BRANCH is the one built.
    sha = _opt(env, "DRONE_COMMIT_SHA", "DRONE_COMMIT")
    event_name = _get(env, "DRONE_BUILD_EVENT")
    if event_name == "pull_request":
        return CiBuild(
            "drone",
            _opt(env, "DRONE_SOURCE_BRANCH"),
            "pull_request",
            _opt(env, "DRONE_PULL_REQUEST"),
            sha,
            _opt(env, "DRONE_TARGET_BRANCH", "DRONE_BRANCH"),
        )
    if event_name == "tag" or _get(env, "DRONE_TAG"):
        return CiBuild("drone", None, "tag", sha=sha, tag=_opt(env, "DRONE_TAG"))
    branch = _opt(env, "DRONE_BRANCH", "DRONE_COMMIT_BRANCH")
    return CiBuild("drone", branch, "push" if event_name == "push" else "other", sha=sha)


def _looks_like_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text.lower())


def _is_true(name: str) -> Callable[[Mapping[str, str]], bool]:
    return lambda env: _get(env, name).lower() in _TRUE


def _is_set(*names: str) -> Callable[[Mapping[str, str]], bool]:
    return lambda env: all(_get(env, n) for n in names)


def _is_cloudbuild(env: Mapping[str, str]) -> bool:
    return bool(
        _get(env, "BUILD_ID")
        and _get(env, "PROJECT_ID")
        and (_get(env, "BRANCH_NAME") or _get(env, "_PR_NUMBER") or _get(env, "TAG_NAME"))
    )


_DETECTORS: tuple[
    tuple[Callable[[Mapping[str, str]], bool], Callable[[Mapping[str, str]], CiBuild]], ...
] = (
    (_is_true("GITHUB_ACTIONS"), _github),
    (_is_true("GITLAB_CI"), _gitlab),
    (_is_set("BITBUCKET_BUILD_NUMBER"), _bitbucket),
    (_is_true("TF_BUILD"), _azure),
    (_is_true("CIRCLECI"), _circleci),
    (_is_set("CODEBUILD_BUILD_ID"), _codebuild),
    (_is_true("DRONE"), _drone),
    # Jenkins after the others: a Jenkins agent may run inside another system's container.
    (_is_set("JENKINS_URL"), _jenkins),
    (_is_cloudbuild, _cloudbuild),
)
