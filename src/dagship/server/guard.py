"""The request guard: authenticate before reading a body, and bound every body.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so
without this guard a client with no token could make the server read and parse a body of any
size before it answered 401. The guard is a plain ASGI middleware in front of the app:

- a request that carries a body to the API (``/api/v1/...``) is authenticated from its
  ``Authorization`` header first; a missing or bad token is a 401 with no byte of the body
  read, and the token it found is handed to the route's dependencies, which do not look it
  up again;
- a body longer than ``DAGSHIP_MAX_REQUEST_BYTES`` is a 413 (``request_too_large``): refused
  from its ``Content-Length`` before it is read, or as soon as a body without one passes the
  limit. Blob uploads (``PUT /api/v1/blobs/{digest}``) are streamed to the store and bounded
  by ``DAGSHIP_MAX_BLOB_SIZE`` instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from dagship.core.vocabulary import ErrorCode
from dagship.server.api.errors import allowed_methods, error_response
from dagship.server.db.engine import Database
from dagship.server.errors import ServiceError
from dagship.server.services import tokens
from dagship.server.services.access import AuthToken
from dagship.server.services.verified_tokens import VerifiedTokens

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1/"
BLOB_UPLOAD_PREFIX = "/api/v1/blobs/"
# Where the guard leaves the token it authenticated, for ``deps.get_current_token``.
TOKEN_KEY = "dagship_token"


def verified(cache: VerifiedTokens, header: str | None) -> AuthToken | None:
    """The token of an ``Authorization`` header if this process verified it lately: no
    database, no thread (services/verified_tokens.py)."""
    secret = _bearer(header)
    return cache.get(tokens.hash_secret(secret)) if secret else None


def authenticate(database: Database, cache: VerifiedTokens, header: str | None) -> AuthToken:
    """The valid token of an ``Authorization`` header, or Unauthorized."""
    if (known := verified(cache, header)) is not None:
        return known
    secret = _bearer(header)
    epoch = cache.epoch
    # A short session of its own, so the route's session does not hold a second connection.
    with database.read_session() as session:
        token, due = tokens.authenticate(session, secret)
        current = tokens.auth_token(token)
        expires_at = token.expires_at
    if due:
        with database.writing() as session:
            tokens.touch(session, current.id)
    if secret:
        cache.remember(tokens.hash_secret(secret), current, expires_at, epoch)
    return current


class RequestGuard:
    """ASGI middleware: 401 before a body is read, 413 for a body over ``max_bytes``."""

    def __init__(
        self, app: App, database: Database, verified: VerifiedTokens, max_bytes: int
    ) -> None:
        self.app = app
        self.database = database
        self.verified = verified
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = allowed_methods(scope["app"], scope) if _is_fixed_path(scope) else []
        if allowed and scope["method"] not in allowed:
            # PUT /blobs/missing is not an upload of blob "missing": the fixed path's route
            # shadows the template's, so the method is not allowed here.
            await _refuse(
                scope,
                receive,
                send,
                405,
                f"method {scope['method']} is not allowed here; use {', '.join(allowed)}",
                ErrorCode.METHOD_NOT_ALLOWED,
                headers={"Allow": ", ".join(allowed)},
            )
            return
        if not _has_body(scope) or not _routed(scope):
            # Nothing reads the body of a request no route takes (404, 405).
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            header = _header(scope, b"authorization")
            try:
                token = verified(self.verified, header)
                if token is None:
                    token = await run_in_threadpool(
                        authenticate, self.database, self.verified, header
                    )
            except ServiceError as exc:
                await _refuse(scope, receive, send, 401, exc.detail, exc.error_code, **exc.extra)
                return
            scope.setdefault("state", {})[TOKEN_KEY] = token
        if scope["method"] == "PUT" and path.startswith(BLOB_UPLOAD_PREFIX):
            await self.app(scope, receive, send)
            return
        await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await self._too_large(scope, receive, send, length)
            return
        # Read the body here, up to the limit (FastAPI would read all of it anyway), then
        # hand it to the app in the same chunks.
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send, None)
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break
        replay = iter(chunks)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, length: int | None
    ) -> None:
        size = f"a body of {length} bytes" if length is not None else "a longer body"
        await _refuse(
            scope,
            receive,
            send,
            413,
            f"request too large: {size}, over the server's limit of {self.max_bytes} bytes "
            "(DAGSHIP_MAX_REQUEST_BYTES); blobs are uploaded one by one with "
            "PUT /api/v1/blobs/{digest}",
            ErrorCode.REQUEST_TOO_LARGE,
            max_bytes=self.max_bytes,
        )


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> None:
    response = error_response(status, detail, code, **extra)
    response.headers.update(headers or {})
    # The body is left unread: the server closes the connection after this answer.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def _is_fixed_path(scope: Scope) -> bool:
    path = scope["path"]
    return any(getattr(route, "path", None) == path for route in scope["app"].router.routes)


def _routed(scope: Scope) -> bool:
    """Whether a route of the app takes this method at this path."""
    return any(route.matches(scope)[0] == Match.FULL for route in scope["app"].router.routes)


def _has_body(scope: Scope) -> bool:
    length = _content_length(scope)
    return bool(length) or _header(scope, b"transfer-encoding") is not None


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
