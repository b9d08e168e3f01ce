"""Errors from talking to a dagship server; messages say what to do next."""

from __future__ import annotations

from typing import Any

from dagship import __version__
from dagship.core.errors import DagshipError


class ClientError(DagshipError):
    """Something the user asked for could not be done; ``str()`` is the message to show."""


class ApiError(ClientError):
    """The server answered with an error status, or could not be reached (``status`` 0)."""

    def __init__(
        self, status: int, code: str, detail: str, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.body = body or {}
        # The request's URL, when the server answered it.
        self.url = ""

    def __repr__(self) -> str:
        return f"ApiError(status={self.status}, code={self.code!r}, detail={self.detail!r})"


class ServerUnreachableError(ApiError):
    """No HTTP answer at all: connection refused, DNS failure, timeout."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            0,
            "unreachable",
            f"cannot reach the dagship server at {url} ({reason}): start it with "
            "`dagship server` or set DAGSHIP_URL",
        )
        self.url = url


class BadAnswerError(ApiError):
    """The server answered, but not with the document the API promises (docs/api.md)."""

    def __init__(self, status: int, url: str, problems: str) -> None:
        super().__init__(
            status,
            "bad_answer",
            f"the server at {url} answered with a document dagship {__version__} cannot read "
            f"({problems}): check that it is a dagship server of the same version",
        )
        self.url = url


class DeployError(ClientError):
    """A deploy was refused before or while uploading."""


class BlobBatchError(ApiError):
    """A blob batch whose stream was cut, or held something other than the blobs asked for."""

    def __init__(self, url: str, problem: str, digest: str | None = None) -> None:
        super().__init__(0, "bad_blob_stream", f"downloading blobs from {url} failed: {problem}")
        self.url = url
        # The blob it stopped at, when known.
        self.digest = digest
