"""Which deployment a build deploys to: its branch, looked up in ``dagship.yaml``.

``dagship deploy --branch auto`` takes the branch from the CI system's variables (or git),
``--branch NAME`` names it; the ``deployments:`` map of ``dagship.yaml`` (exact names first,
then patterns such as ``release/*`` in file order) picks the deployment, or none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagship.integrations.errors import IntegrationError
from dagship.integrations.source import BuildSource, build_source
from dagship.project.config import CONFIG_FILE, load_config

AUTO = "auto"


class BranchError(IntegrationError):
    """The branch cannot be told, or ``dagship.yaml`` maps no branches."""


@dataclass(frozen=True)
class BranchTarget:
    """Where a build of ``branch`` deploys: ``deployment``, or None with ``reason`` saying why
    nothing is deployed (the branch is not mapped, or the build is for a tag)."""

    branch: str | None
    source: str
    deployment: str | None
    reason: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "branch": self.branch,
            "branch_source": self.source,
            "deployment": self.deployment,
            "reason": self.reason,
        }


def branch_target(
    project: str | os.PathLike[str],
    requested: str,
    env: Mapping[str, str] | None = None,
) -> BranchTarget:
    """The deployment for ``requested`` (a branch name, or ``auto``) per ``dagship.yaml``."""
    env = os.environ if env is None else env
    config = load_config(Path(project))
    if not config.deployments:
        raise BranchError(
            f"{Path(project) / CONFIG_FILE} maps no branches to deployments, so --branch "
            f"cannot pick one: add e.g. `deployments: {{main: prod, develop: dev}}`, "
            f"or deploy with --deployment NAME"
        )
    if requested != AUTO:
        branch, source = requested.strip(), "argument"
        if not branch:
            raise BranchError("--branch needs a branch name, or `auto` for the one CI builds")
    else:
        build = build_source(project, env)
        if build.ci.event == "tag":
            return BranchTarget(
                None,
                build.ci.system or "ci",
                None,
                f"this {build.ci.name} build is for tag {build.tag or '?'}, not a branch: "
                f"nothing deployed",
            )
        branch, source = _auto_branch(project, build)
    deployment = config.deployment_for(branch)
    if deployment is not None:
        return BranchTarget(branch, source, deployment)
    mapped = ", ".join(config.deployments)
    return BranchTarget(
        branch,
        source,
        None,
        f"branch {branch} maps to no deployment in {CONFIG_FILE} (mapped: {mapped}): "
        f"nothing deployed",
    )


def _auto_branch(project: str | os.PathLike[str], build: BuildSource) -> tuple[str, str]:
    if build.branch and build.branch_source:
        return build.branch, build.branch_source
    ci = build.ci
    where = f"{ci.name} sets no branch variable dagship knows" if ci.in_ci else "not in CI"
    raise BranchError(
        f"cannot tell which branch this is ({where}, and git has no branch checked out at "
        f"{project}: detached HEAD or not a repository): pass --branch NAME"
    )
