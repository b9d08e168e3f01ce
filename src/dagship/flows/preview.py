"""Preview deployments of branches: create, deploy to, delete."""

from __future__ import annotations

import os

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError, ClientError
from dagship.core.naming import PreviewNameError, preview_name
from dagship.core.schemas import PreviewDeleted
from dagship.core.vocabulary import Mode
from dagship.flows.deploy import Allow, CheckDeploy, DeployResult, deploy
from dagship.flows.upload import UploadProgress


def name_of(branch: str) -> str:
    """The deployment name of ``branch``'s preview; ClientError for an unusable branch."""
    try:
        return preview_name(branch)
    except PreviewNameError as exc:
        raise ClientError(
            f"{exc}; pass the branch name with --name, e.g. --name feature/abc-12"
        ) from None


def deploy_preview(
    client: ApiClient,
    branch: str,
    path: str | os.PathLike[str],
    mode: Mode = Mode.AUTO,
    description: str | None = None,
    on_progress: UploadProgress | None = None,
    check: CheckDeploy | None = None,
    allow: Allow | None = None,
) -> DeployResult:
    """Deploy the project at ``path`` to the preview of ``branch``, which must exist; ``check``
    as for ``deploy``."""
    name = name_of(branch)
    try:
        target = client.get_deployment(name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise ClientError(
            f"there is no preview for branch {branch!r} (deployment {name}); create it with "
            f"`dagship preview create --from DEPLOYMENT --name '{branch}'`"
        ) from None
    if target.preview_branch is None:
        raise ClientError(
            f"deployment {name} is not a preview, so `dagship preview deploy` leaves it alone; "
            f"deploy to it with `dagship deploy -d {name}` if you mean to"
        )
    return deploy(
        client,
        path,
        name,
        mode,
        description=description,
        on_progress=on_progress,
        check=check,
        allow=allow,
    )


def delete_preview(client: ApiClient, branch: str) -> PreviewDeleted:
    """What was deleted: ``deleted`` False when there was no such preview."""
    name = name_of(branch)
    try:
        return client.delete_preview(name)
    except ApiError as exc:
        if exc.status != 404:
            raise
        return PreviewDeleted(deleted=False, name=name, branch=branch)
