"""Step outputs for GitHub Actions from a deploy's ``--json``: deploy id, seq, versions."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagship.integrations.errors import IntegrationError


class OutputsError(IntegrationError):
    """The deploy JSON cannot be read, or the outputs file cannot be written."""


def deploy_outputs(document: Mapping[str, Any]) -> dict[str, str]:
    """The action's outputs from what ``dagship deploy --json`` (or ``preview deploy``)
    printed; a branch mapped to no deployment gives ``deployed=false`` and empty fields."""
    deploy = document.get("deploy") if isinstance(document.get("deploy"), Mapping) else None
    source: Mapping[str, Any] = deploy or document
    deployed = document.get("deployed")
    if deployed is None:
        deployed = not document.get("unchanged", False) and "id" in source
    return {
        "deployed": "true" if deployed else "false",
        "deployment": str(source.get("deployment") or ""),
        "deploy-id": str(source.get("id") or ""),
        "seq": "" if source.get("seq") is None else str(source["seq"]),
        "dags-version": str(source.get("dags_version") or ""),
        "project-version": str(source.get("project_version") or ""),
    }


def read_deploy_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise OutputsError(
            f"{path} does not exist: write it with `dagship deploy ... --json > {path}`"
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputsError(f"{path} is not the JSON `dagship deploy --json` prints: {exc}") from exc
    if not isinstance(data, dict):
        raise OutputsError(f"{path} is not the JSON object `dagship deploy --json` prints")
    return data


def write_github_outputs(outputs: Mapping[str, str], path: str | os.PathLike[str]) -> None:
    """Append ``outputs`` to GitHub's ``$GITHUB_OUTPUT`` file (heredoc form, any value)."""
    lines = []
    for key, value in outputs.items():
        marker = f"dagship_{uuid.uuid4().hex}"
        lines.append(f"{key}<<{marker}\n{value}\n{marker}\n")
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
    except OSError as exc:
        raise OutputsError(f"cannot write the step outputs to {path}: {exc}") from exc
