"""Ready pipeline files for CI systems: ``dagship ci init PROVIDER`` writes one.

Each is package data (``templates/``) with one placeholder, ``@PREVIEW_FROM@``: the deployment
pull-request previews copy. A pipeline is written for the project at the repository's root and
agrees with its ``dagship.yaml``: pushes deploy through its ``deployments:`` map, and previews
copy a deployment that map names. Files are written whole, through a temporary file and
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
from dagship.project.config import CONFIG_FILE, load_config

PREVIEW_FROM = "@PREVIEW_FROM@"
# How the README tells users to install dagship; every template installs it this way.
INSTALL = "pip install dagship uv"


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
    preview_from: str  # the deployment pull-request previews copy (if the system has them)

    def to_dict(self) -> dict[str, object]:
        return {
            "provider": self.pipeline.provider,
            "name": self.pipeline.name,
            "path": str(self.path),
            "replaced": self.replaced,
            "previews": self.pipeline.previews,
            "preview_from": self.preview_from if self.pipeline.previews else None,
        }


def pipeline_for(provider: str) -> Pipeline:
    key = provider.strip().lower()
    if key not in PIPELINES:
        raise PipelineError(f"unknown CI system {provider!r}: choose one of {', '.join(PIPELINES)}")
    return PIPELINES[key]


def render(provider: str, preview_from: str) -> str:
    """The pipeline file's text for ``provider``, previews copying ``preview_from``."""
    pipeline = pipeline_for(provider)
    _check_name(preview_from)
    text = (
        resources.files(__package__)
        .joinpath("templates", pipeline.template)
        .read_text(encoding="utf-8")
    )
    return text.replace(PREVIEW_FROM, preview_from)


def _check_name(preview_from: str) -> None:
    if not preview_from.strip() or any(c.isspace() or c in "\"'$`\\" for c in preview_from):
        raise PipelineError(
            f"--preview-from must be a deployment name (letters, digits, - and _), "
            f"not {preview_from!r}"
        )


def project_pipeline(
    provider: str, root: str | os.PathLike[str], preview_from: str | None = None
) -> str:
    """The pipeline file for ``provider`` and the project at ``root``, per its dagship.yaml."""
    pipeline_for(provider)
    return render(provider, preview_source(root, preview_from))


def preview_source(root: str | os.PathLike[str], requested: str | None = None) -> str:
    """The deployment previews copy: ``requested`` if ``dagship.yaml`` maps a branch to it,
    else the deployment of the map's first plain branch name (``main: prod`` gives ``prod``).

    Refused when the project has no ``deployments:`` map: its pushes would deploy nowhere.
    """
    if requested is not None:
        _check_name(requested)
    path = Path(root) / CONFIG_FILE
    mapped = load_config(Path(root)).deployments
    if not mapped:
        what = "has no `deployments:` map" if path.is_file() else "does not exist"
        raise PipelineError(
            f"{path} {what}, and the pipeline deploys each push with `dagship deploy "
            f"--branch auto`, which looks the branch up there: add e.g. "
            f"`deployments: {{main: prod}}` (`dagship init --force` writes an example "
            f"dagship.yaml); nothing written"
        )
    deployments = list(dict.fromkeys(mapped.values()))
    if requested is None:
        plain = [d for branch, d in mapped.items() if not any(c in branch for c in "*?[")]
        return (plain or deployments)[0]
    if requested not in deployments:
        pairs = ", ".join(f"{branch} -> {d}" for branch, d in mapped.items())
        raise PipelineError(
            f"--preview-from {requested}: {path} maps no branch to deployment {requested} "
            f"(it maps {pairs}), so previews would copy a deployment this project does not "
            f"deploy to: pass one of {', '.join(deployments)}, or map a branch to "
            f"{requested} first; nothing written"
        )
    return requested


def write_pipeline(
    provider: str,
    root: str | os.PathLike[str],
    preview_from: str | None = None,
    force: bool = False,
) -> Written:
    """Write the pipeline file for ``provider`` into the repository at ``root``.

    Refuses to replace an existing file unless ``force``; nothing is written then.
    """
    pipeline = pipeline_for(provider)
    base = Path(root)
    if not base.is_dir():
        raise PipelineError(f"{base} is not a folder: pass --path with the repository's root")
    source = preview_source(base, preview_from)
    text = render(provider, source)
    target = base / pipeline.path
    exists = target.exists()
    if exists and not force:
        raise PipelineError(
            f"{target} already exists; nothing written. Compare it with "
            f"`dagship ci init {pipeline.provider} --print`, or replace it with --force"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    return Written(pipeline, target, exists, source)
