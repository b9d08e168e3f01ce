"""Every error leaves the server as {"detail": str, "code": str, ...extra}."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from dagship.core.vocabulary import ErrorCode
from dagship.server import errors

log = logging.getLogger("dagship.server")

STATUS = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Invalid: 422,
}
HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    422: ErrorCode.INVALID,
}


def error_response(status: int, detail: str, code: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, "code": code, **extra}, status, headers=headers)


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    status = next(s for cls, s in STATUS.items() if isinstance(exc, cls))
    return error_response(status, exc.detail, exc.error_code, **exc.extra)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "")
        return error_response(
            400, f"the body is not valid JSON: {reason}".rstrip(": "), ErrorCode.MALFORMED_JSON
        )
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
        for error in exc.errors()[:5]
    ]
    return error_response(422, "; ".join(problems) or "invalid request", ErrorCode.INVALID)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    detail = str(exc.detail)
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        detail = f"method {request.method} is not allowed here; use {headers['Allow']}"
    response = error_response(exc.status_code, detail, code)
    response.headers.update(headers)
    return response


def allowed_methods(app: Any, scope: MutableMapping[str, Any]) -> list[str]:
    """The methods the API takes at the request's path, as its OpenAPI document lists them.

    Starlette names only those of the first route that matches the path, and a path often has
    several routes (GET, PATCH, DELETE). A fixed path shadows a template that also matches it
    (``/previews/cleanup`` is not ``/previews/{name}``), as in OpenAPI.
    """
    matching = [route for route in app.router.routes if route.matches(scope)[0] != Match.NONE]
    fixed = [route for route in matching if getattr(route, "path", None) == scope["path"]]
    methods: set[str] = set()
    for route in fixed or matching:
        methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(
        500, "internal server error: this is a bug in dagship; please report it", ErrorCode.INTERNAL
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.ServiceError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
