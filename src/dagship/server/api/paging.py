"""Lists in pages: ``?limit=N`` (bounded) and ``?after=CURSOR``, the last item of the page
before (a deployment's or preview's name, a token's id). The answer is the same JSON list as
without paging; when more items follow, a ``Link: <...>; rel="next"`` header (RFC 8288) gives
the next page's path. Services return up to ``limit + 1`` rows, so one more row than asked
says that more follow without counting them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import Query, Request, Response

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

T = TypeVar("T")

# The Link header, in the OpenAPI document of each paged list.
LINKED: dict[int | str, dict[str, object]] = {
    200: {
        "headers": {
            "Link": {
                "description": "The next page, while more follow: "
                '`<PATH?limit=N&after=C>; rel="next"`',
                "schema": {"type": "string"},
            }
        }
    }
}

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many items, at most.")]
After = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        description="Start after this item: the last one of the page before (its name or id).",
    ),
]


def page(
    rows: Sequence[T],
    limit: int,
    request: Request,
    response: Response,
    cursor: Callable[[T], str],
) -> Sequence[T]:
    """The first ``limit`` rows; if there are more, a Link header to the page after them."""
    if len(rows) <= limit:
        return rows
    rows = rows[:limit]
    query = urlencode({"limit": limit, "after": cursor(rows[-1])})
    response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return rows
