"""The source of a build: the commit deployed, its branch, and the CI system building it.

git knows the commit checked out (``dagship.project.git``); the CI system's variables know
what the build is for (``dagship.integrations.ci``), since CI systems check out a detached
HEAD. This is the one place that combines them, so the branch a deploy records is the branch
``--branch auto`` picks the deployment by.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from dagship.integrations.ci import CiBuild, detect
from dagship.project.git import git_info


@dataclass(frozen=True)
class BuildSource:
    """What is built and why. ``branch`` is None for a tag build (a tag is not a branch) and
    when neither the CI system nor git names one; ``branch_source`` says which named it: the
    CI system (``github``, ``gitlab``, ...) or ``git``. ``dirty`` says the project's files
    differ from commit ``sha`` (None when git does not know)."""

    ci: CiBuild
    sha: str | None = None
    branch: str | None = None
    branch_source: str | None = None
    author: str | None = None
    message: str | None = None
    dirty: bool | None = None

    @property
    def tag(self) -> str | None:
        return self.ci.tag


def build_source(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> BuildSource:
    """The source of the build of the project at ``path`` (``env``: default this process's).

    The commit is git's HEAD, the one on disk and so the one deployed (the CI system's commit
    when git has none); the branch is the CI system's, else the branch git has checked out.
    """
    build = detect(os.environ if env is None else env)
    git = git_info(path)
    branch, branch_source = _branch(build, git.branch)
    return BuildSource(
        ci=build,
        sha=git.sha or build.sha,
        branch=branch,
        branch_source=branch_source,
        author=git.author,
        message=git.message,
        dirty=git.dirty if git.sha else None,
    )


def _branch(build: CiBuild, checked_out: str | None) -> tuple[str | None, str | None]:
    if build.event == "tag":
        return None, None
    if build.branch:
        return build.branch, build.system or "ci"
    if checked_out:
        return checked_out, "git"
    return None, None
