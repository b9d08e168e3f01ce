"""Ready pipeline files for CI systems: ``dagship ci init PROVIDER`` writes one.

Each is package data (``templates/``) with one placeholder, ``@PREVIEW_FROM@``: the deployment
pull-request previews copy. Files are written whole, through a temporary file and
``os.replace``, and an existing file is replaced only when asked to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dagship.files import write_atomic
from dagship.integrations.ci import SYSTEM_NAMES
from dagship.integrations.errors import IntegrationError

PREVIEW_FROM = "@PREVIEW_FROM@"


class PipelineError(IntegrationError):
    """A pipeline file cannot be written."""


@dataclass(frozen=True)
class Pipeline:
    provider: str
    template: str  # file name under dagship/integrations/templates
    path: str  # where the CI system reads it, relative to the repository root
    previews: bool  # whether the system has pull request events (and so previews)

    @property
    def name(self) -> str:
        return SYSTEM_NAMES[self.provider]


PIPELINES = {
    p.provider: p
    for p in (
        Pipeline("github", "github.yml", ".github/workflows/dagship.yml", True),
        Pipeline("gitlab", "gitlab.yml", ".gitlab-ci.yml", True),
        Pipeline("jenkins", "Jenkinsfile", "Jenkinsfile", True),
        Pipeline("bitbucket", "bitbucket.yml", "bitbucket-pipelines.yml", True),
        Pipeline("azure", "azure.yml", "azure-pipelines.yml", True),
        Pipeline("circleci", "circleci.yml", ".circleci/config.yml", False),
        Pipeline("codebuild", "codebuild.yml", "buildspec.yml", True),
        Pipeline("cloudbuild", "cloudbuild.yaml", "cloudbuild.yaml", True),
        Pipeline("drone", "drone.yml", ".drone.yml", True),
    )
}


@dataclass(frozen=True)
class Written:
    pipeline: Pipeline
    path: Path
    replaced: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "provider": self.pipeline.provider,
            "name": self.pipeline.name,
            "path": str(self.path),
            "replaced": self.replaced,
            "previews": self.pipeline.previews,
        }


def pipeline_for(provider: str) -> Pipeline:
    key = provider.strip().lower()
    if key not in PIPELINES:
        raise PipelineError(f"unknown CI system {provider!r}: choose one of {', '.join(PIPELINES)}")
    return PIPELINES[key]


def render(provider: str, preview_from: str = "dev") -> str:
    """The pipeline file's text for ``provider``, previews copying ``preview_from``."""
    pipeline = pipeline_for(provider)
    if not preview_from.strip() or any(c.isspace() or c in "\"'$`\\" for c in preview_from):
        raise PipelineError(
            f"--preview-from must be a deployment name (letters, digits, - and _), "
            f"not {preview_from!r}"
        )
    text = (
        resources.files(__package__)
        .joinpath("templates", pipeline.template)
        .read_text(encoding="utf-8")
    )
    return text.replace(PREVIEW_FROM, preview_from)


def write_pipeline(
    provider: str, root: str | os.PathLike[str], preview_from: str = "dev", force: bool = False
) -> Written:
    """Write the pipeline file for ``provider`` into the repository at ``root``.

    Refuses to replace an existing file unless ``force``; nothing is written then.
    """
    pipeline = pipeline_for(provider)
    text = render(provider, preview_from)
    base = Path(root)
    if not base.is_dir():
        raise PipelineError(f"{base} is not a folder: pass --path with the repository's root")
    target = base / pipeline.path
    exists = target.exists()
    if exists and not force:
        raise PipelineError(
            f"{target} already exists; nothing written. Compare it with "
            f"`dagship ci init {pipeline.provider} --print`, or replace it with --force"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    return Written(pipeline, target, exists)
