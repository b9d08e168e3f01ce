"""Domain errors raised by services; api/errors.py turns them into HTTP responses.

Each carries a machine `code` (the API's error codes) and optional extra fields that
are returned next to `detail`, e.g. `missing` for missing blobs.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DagshipError(Exception):
    code: ClassVar[str] = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error_code = code or self.code
        self.extra = extra


class BadRequest(DagshipError):
    code = "bad_request"


class Unauthorized(DagshipError):
    code = "unauthorized"


class Forbidden(DagshipError):
    code = "forbidden"


class NotFound(DagshipError):
    code = "not_found"


class Conflict(DagshipError):
    code = "conflict"


class TooLarge(DagshipError):
    code = "too_large"


class Invalid(DagshipError):
    code = "invalid"
