"""Domain errors raised by services; api/errors.py turns them into HTTP responses.

Each carries a machine `code` (``ErrorCode``, the API's error codes) and optional extra
fields that are returned next to `detail`, e.g. `missing` for missing blobs. The detail says
what went wrong in the API's terms; clients add what to do next in theirs (the CLI's hints).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dagship.core.errors import DagshipError
from dagship.core.vocabulary import ErrorCode


class ServiceError(DagshipError):
    """A request the server refuses; ``code`` and ``extra`` go into the error response."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID

    def __init__(self, detail: str, *, code: ErrorCode | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error_code = code or self.code
        self.extra = extra


class BadRequest(ServiceError):
    code = ErrorCode.BAD_REQUEST


class Unauthorized(ServiceError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(ServiceError):
    code = ErrorCode.FORBIDDEN


class NotFound(ServiceError):
    code = ErrorCode.NOT_FOUND


class Conflict(ServiceError):
    code = ErrorCode.CONFLICT


class TooLarge(ServiceError):
    code = ErrorCode.TOO_LARGE


class Invalid(ServiceError):
    code = ErrorCode.INVALID
