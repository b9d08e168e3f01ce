"""Token routes: create (the secret is returned once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from dagship.core.schemas import TokenCreate, TokenCreated, TokenOut
from dagship.server import views
from dagship.server.api.paging import DEFAULT_LIMIT, LINKED, After, Limit, page
from dagship.server.deps import Admin, SessionDep, VerifiedTokensDep, WriteSessionDep
from dagship.server.services import tokens

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: WriteSessionDep, token: Admin) -> TokenCreated:
    created = tokens.create_token(
        session,
        body.role,
        deployment=body.deployment,
        description=body.description,
        expires_in_seconds=body.expires_in_seconds,
        creator=token,
    )
    out = TokenCreated(**views.token_out(created.token).model_dump(), token=created.secret)
    session.commit()
    return out


@router.get("", responses=LINKED)
def list_tokens(
    request: Request,
    response: Response,
    session: SessionDep,
    token: Admin,
    limit: Limit = DEFAULT_LIMIT,
    after: After = None,
) -> list[TokenOut]:
    """Tokens, oldest first, a page at a time (``Link`` header to the next page)."""
    found = tokens.list_tokens(session, token, limit + 1, after)
    return [views.token_out(t) for t in page(found, limit, request, response, lambda t: t.id)]


@router.delete("/{token_id}")
def revoke_token(
    token_id: str, session: WriteSessionDep, token: Admin, verified: VerifiedTokensDep
) -> TokenOut:
    out = views.token_out(tokens.revoke_token(session, token_id, token))
    session.commit()
    # The next request with the token is refused, in this process; the others hear of it
    # through their watcher (services/verified_tokens.py).
    verified.forget_all()
    return out
