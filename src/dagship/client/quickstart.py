"""``dagship quickstart``: a local server, an example project and its first deploy."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagship.client.api import ApiClient
from dagship.client.deploy import DeployResult, deploy
from dagship.client.errors import ApiError
from dagship.client.local import (
    DEFAULT_PORT,
    LocalServer,
    start_local_server,
    stop_local_server,
)
from dagship.client.settings import dagship_home, resolve_settings
from dagship.client.upload import UploadProgress
from dagship.project.scaffold import scaffold_project

LOCAL_DEPLOYMENT = "local"


@dataclass(frozen=True)
class QuickstartResult:
    server: LocalServer
    project_dir: Path
    scaffolded: list[str]
    created_deployment: bool
    deploy: DeployResult

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.server.url,
            "home": str(self.server.home),
            "token_file": str(self.server.token_file),
            "started_server": self.server.started,
            "server_pid": self.server.pid,
            "project_dir": str(self.project_dir),
            "scaffolded": self.scaffolded,
            "deployment": LOCAL_DEPLOYMENT,
            "created_deployment": self.created_deployment,
            "deploy": self.deploy.to_dict(),
        }


def quickstart(
    directory: str | os.PathLike[str],
    port: int = DEFAULT_PORT,
    home: Path | None = None,
    on_progress: UploadProgress | None = None,
) -> QuickstartResult:
    """Start (or reuse) a local server, scaffold an example project if ``directory`` has no
    dags/, create the ``local`` deployment if missing, and deploy the project to it.

    A server started here is stopped again if a later step fails.
    """
    home = home or dagship_home()
    project_dir = Path(directory).absolute()
    server = start_local_server(home, port)
    try:
        scaffolded = scaffold_project(project_dir)
        env = {**os.environ, "DAGSHIP_HOME": str(home)}
        settings = resolve_settings(url=server.url, env=env)
        with ApiClient(settings.url, settings.token) as client:
            created = _ensure_deployment(client, LOCAL_DEPLOYMENT)
            result = deploy(client, project_dir, LOCAL_DEPLOYMENT, on_progress=on_progress)
    except BaseException:
        stop_local_server(server)
        raise
    return QuickstartResult(server, project_dir, scaffolded, created, result)


def _ensure_deployment(client: ApiClient, name: str) -> bool:
    try:
        client.get_deployment(name)
        return False
    except ApiError as exc:
        if exc.status != 404:
            raise
    client.create_deployment(name, description="created by dagship quickstart")
    return True
