"""Preview routes: list, create, delete, and clean up idle previews."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from dagship.core.schemas import (
    CleanupOut,
    CleanupRequest,
    PreviewCreate,
    PreviewCreated,
    PreviewDeleted,
    PreviewOut,
)
from dagship.core.vocabulary import ErrorCode
from dagship.server import views
from dagship.server.api.paging import DEFAULT_LIMIT, LINKED, After, Limit, page
from dagship.server.deps import (
    CurrentToken,
    SessionDep,
    SettingsDep,
    VerifiedTokensDep,
    Viewer,
    WriteSessionDep,
)
from dagship.server.errors import Invalid
from dagship.server.services import previews

router = APIRouter(prefix="/previews", tags=["previews"])


@router.get("", responses=LINKED)
def list_previews(
    request: Request,
    response: Response,
    session: SessionDep,
    token: Viewer,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[PreviewOut]:
    """Previews by name, a page at a time (``Link`` header to the next page)."""
    found = previews.list_previews(session, token, limit + 1, after)
    return [_out(p) for p in page(found, limit, request, response, lambda p: p.deployment.name)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PreviewCreated, "description": "The preview already exists"}},
)
def create_preview(
    body: PreviewCreate,
    response: Response,
    session: WriteSessionDep,
    token: CurrentToken,
    settings: SettingsDep,
) -> PreviewCreated:
    result = previews.create_preview(
        session,
        token,
        body.source,
        body.branch,
        body.airflow_url,
        url_template=settings.preview_airflow_url_template,
    )
    out = PreviewCreated(
        created=result.created,
        preview=_out(result.preview),
        deploy=views.deploy_out(result.deploy) if result.deploy else None,
    )
    session.commit()
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return out


@router.delete("/{name}")
def delete_preview(
    name: str, session: WriteSessionDep, token: CurrentToken, verified: VerifiedTokensDep
) -> PreviewDeleted:
    preview = previews.delete_preview(session, token, name)
    out = PreviewDeleted(deleted=True, name=name, branch=preview.deployment.preview_branch)
    session.commit()
    verified.forget_all()  # its tokens were revoked
    return out


@router.post("/cleanup")
def cleanup(
    body: CleanupRequest,
    session: WriteSessionDep,
    token: CurrentToken,
    settings: SettingsDep,
    verified: VerifiedTokensDep,
) -> CleanupOut:
    idle = body.idle_seconds or settings.preview_idle_timeout
    if idle is None:
        raise Invalid(
            "this server never cleans up previews (DAGSHIP_PREVIEW_IDLE_TIMEOUT is off); "
            "say how long a preview may be idle in idle_seconds",
            code=ErrorCode.IDLE_SECONDS_REQUIRED,
        )
    deleted = [_out(p) for p in previews.cleanup(session, token, idle)]
    session.commit()
    if deleted:
        verified.forget_all()  # their tokens were revoked
    return CleanupOut(idle_seconds=idle, deleted=deleted)


def _out(preview: previews.Preview) -> PreviewOut:
    return views.preview_out(preview.deployment, preview.current)
