"""API tokens: created random, shown once, stored as a sha256 hash, scoped by role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from dagship.core.vocabulary import ErrorCode, Role
from dagship.server.db import changes
from dagship.server.db.models import Deployment, Token, utcnow
from dagship.server.errors import Forbidden, Invalid, NotFound, Unauthorized
from dagship.server.services import access
from dagship.server.services.access import AuthToken

SECRET_PREFIX = "dsh_"
# last_used_at is refreshed at most this often, so reads do not turn into a write each.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: Token
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    role: Role,
    *,
    deployment: str | None = None,
    description: str = "",
    expires_in_seconds: int | None = None,
    creator: AuthToken | None = None,
) -> NewToken:
    if creator is not None and creator.deployment is not None:
        if deployment is None:
            raise Forbidden(
                f"token is bound to deployment {creator.deployment}; it can only create "
                "tokens for that deployment, named in the request",
                code=ErrorCode.DEPLOYMENT_REQUIRED,
                deployment=creator.deployment,
            )
        access.check_deployment(creator, deployment)
    deployment_id = None
    if deployment is not None:
        found = session.scalar(select(Deployment.id).where(Deployment.name == deployment))
        if found is None:
            raise NotFound(
                f"deployment {deployment!r} does not exist",
                code=ErrorCode.DEPLOYMENT_NOT_FOUND,
                deployment=deployment,
            )
        deployment_id = found
    now = utcnow()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = Token(
        id="tok_" + secrets.token_hex(6),
        token_hash=hash_secret(secret),
        role=role,
        deployment_id=deployment_id,
        description=description,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None,
    )
    session.add(token)
    session.flush()
    return NewToken(token=token, secret=secret)


def ensure_initial_admin(session: Session) -> NewToken | None:
    """Create the first admin token when there are no tokens at all."""
    if session.scalar(select(func.count()).select_from(Token)):
        return None
    return create_token(session, Role.ADMIN, description="initial admin token")


def authenticate(session: Session, secret: str | None) -> tuple[Token, bool]:
    """The valid token for `secret`, and whether its last_used_at is due a refresh."""
    if not secret:
        raise Unauthorized(
            "missing token: send `Authorization: Bearer <token>`", code=ErrorCode.TOKEN_MISSING
        )
    digest = hash_secret(secret)
    token = session.scalar(select(Token).where(Token.token_hash == digest))
    # The lookup is by hash; the constant-time compare guards the final equality check.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise Unauthorized("invalid token", code=ErrorCode.TOKEN_INVALID)
    now = utcnow()
    if token.revoked_at is not None:
        raise Unauthorized(
            f"token {token.id} was revoked at {_iso(token.revoked_at)}",
            code=ErrorCode.TOKEN_REVOKED,
            token_id=token.id,
        )
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized(
            f"token {token.id} expired at {_iso(token.expires_at)}",
            code=ErrorCode.TOKEN_EXPIRED,
            token_id=token.id,
        )
    due = token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION
    return token, due


def touch(session: Session, token_id: str) -> None:
    session.execute(update(Token).where(Token.id == token_id).values(last_used_at=utcnow()))


def auth_token(token: Token) -> AuthToken:
    return AuthToken(
        id=token.id,
        role=Role(token.role),
        deployment_id=token.deployment_id,
        deployment=token.deployment.name if token.deployment else None,
    )


def list_tokens(
    session: Session, viewer: AuthToken, limit: int, after: str | None = None
) -> list[Token]:
    """Up to ``limit`` tokens the viewer may see, oldest first, after the token ``after``."""
    query = select(Token).order_by(Token.created_at, Token.id).limit(limit)
    if viewer.deployment_id is not None:
        query = query.where(Token.deployment_id == viewer.deployment_id)
    if after is not None:
        last = session.get(Token, after)
        if last is None:
            raise Invalid(
                f"after: there is no token {after}; page on with the id of the last token of "
                "the page before",
                code=ErrorCode.BAD_CURSOR,
                after=after,
            )
        query = query.where(
            or_(
                Token.created_at > last.created_at,
                and_(Token.created_at == last.created_at, Token.id > last.id),
            )
        )
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: str, actor: AuthToken) -> Token:
    token = session.get(Token, token_id)
    if token is None or (
        actor.deployment_id is not None and token.deployment_id != actor.deployment_id
    ):
        raise NotFound(
            f"token {token_id} does not exist", code=ErrorCode.TOKEN_NOT_FOUND, token_id=token_id
        )
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        changes.announce_revocation(session)
    return token


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
