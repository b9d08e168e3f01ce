"""``dagship.yaml``: the project's own settings (server URL, Airflow version, branch map).

Every key is optional and a project without the file is valid: an Astro project deploys
unchanged. Unknown keys are an error so that a typo does not silently do nothing.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dagship.project.errors import ProjectError

CONFIG_FILE = "dagship.yaml"
KNOWN_KEYS = ("url", "airflow_version", "deployments", "preview")


class ConfigError(ProjectError):
    """``dagship.yaml`` cannot be read or holds a value of the wrong shape."""


@dataclass(frozen=True)
class ProjectConfig:
    """What ``dagship.yaml`` says; fields are None (or empty) when it does not say."""

    url: str | None = None
    airflow_version: str | None = None
    # Git branch (or glob pattern such as ``release/*``) -> deployment name, in file order.
    deployments: dict[str, str] = field(default_factory=dict)
    # Settings for preview deployments (``preview:`` mapping), kept as given.
    preview: dict[str, Any] = field(default_factory=dict)

    def deployment_for(self, branch: str) -> str | None:
        """The deployment a push to ``branch`` goes to: an exact entry first, then the first
        matching pattern in file order; None when the branch maps to no deployment."""
        if branch in self.deployments:
            return self.deployments[branch]
        for pattern, deployment in self.deployments.items():
            if fnmatch.fnmatchcase(branch, pattern):
                return deployment
        return None


def load_config(project: str | Path) -> ProjectConfig:
    """Read ``dagship.yaml`` from the project folder; an absent file gives the defaults."""
    path = Path(project) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ProjectConfig()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return ProjectConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of settings (url, airflow_version, ...)")
    unknown = sorted(str(key) for key in data if key not in KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {', '.join(unknown)}; known settings are "
            f"{', '.join(KNOWN_KEYS)}"
        )
    return ProjectConfig(
        url=_optional_text(data, "url", path),
        airflow_version=_optional_text(data, "airflow_version", path),
        deployments=_branch_map(data.get("deployments"), path),
        preview=_mapping(data.get("preview"), "preview", path),
    )


def _optional_text(data: dict[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConfigError(f"{path}: {key} must be a string, not {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _mapping(value: object, key: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a mapping")
    return {str(k): v for k, v in value.items()}


def _branch_map(value: object, path: Path) -> dict[str, str]:
    branches = _mapping(value, "deployments", path)
    result: dict[str, str] = {}
    for branch, deployment in branches.items():
        if not isinstance(deployment, str) or not deployment.strip():
            raise ConfigError(
                f"{path}: deployments.{branch} must name a deployment "
                f"(e.g. `{branch}: prod`), not {deployment!r}"
            )
        result[branch] = deployment.strip()
    return result
