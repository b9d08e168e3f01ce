"""Domain errors raised by services; api/errors.py turns them into HTTP responses.

Each carries a machine `code` (the API's error codes) and optional extra fields that
are returned next to `detail`, e.g. `missing` for missing blobs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dagship.core.errors import DagshipError


class ServiceError(DagshipError):
    """A request the server refuses; ``code`` and ``extra`` go into the error response."""

    code: ClassVar[str] = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error_code = code or self.code
        self.extra = extra


class BadRequest(ServiceError):
    code = "bad_request"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class TooLarge(ServiceError):
    code = "too_large"


class Invalid(ServiceError):
    code = "invalid"
