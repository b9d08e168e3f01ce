"""Promotion route: make a deployment run another deployment's deploy."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from dagship.core.schemas import PromoteOut, PromoteRequest
from dagship.server import views
from dagship.server.deps import CurrentToken, EventsDep, WriteSessionDep
from dagship.server.services import promote

router = APIRouter(tags=["deploys"])


@router.post(
    "/deployments/{name}/promote",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": PromoteOut, "description": "Unchanged, or a dry run"}},
)
def promote_to(
    name: str,
    body: PromoteRequest,
    response: Response,
    session: WriteSessionDep,
    token: CurrentToken,
    events: EventsDep,
) -> PromoteOut:
    result = promote.promote(
        session,
        token,
        name,
        body.source,
        seq=body.seq,
        expect_seq=body.expect_seq,
        description=body.description,
        dry_run=body.dry_run,
    )
    out = PromoteOut(
        unchanged=result.unchanged,
        dry_run=result.dry_run,
        kind=result.kind,
        source=views.deploy_out(result.source),
        deploy=views.deploy_out(result.deploy) if result.deploy else None,
    )
    if result.unchanged or result.dry_run:
        session.rollback()
        response.status_code = status.HTTP_200_OK
    else:
        session.commit()
        events.notify()
    return out
