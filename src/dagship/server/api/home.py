"""The server's front page: what this is and where its API, docs and health check are.

A browser gets a small HTML page; other clients (``curl``, scripts) get the same as JSON. Both
answer without a token and load nothing, so the page works where the server has no internet.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from dagship import __version__

router = APIRouter(tags=["health"])

# What a person or a script looks for first, in that order.
LINKS = {
    "docs": ("/docs", "API reference (Swagger UI)"),
    "redoc": ("/redoc", "API reference (ReDoc)"),
    "openapi": ("/openapi.json", "OpenAPI document"),
    "api": ("/api/v1/info", "API v1: server facts"),
    "health": ("/healthz", "health check"),
}


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_page(request.scope.get("root_path", "")))
    return JSONResponse(
        {
            "name": "dagship",
            "version": __version__,
            "links": {key: path for key, (path, _label) in LINKS.items()},
        }
    )


def _page(root: str) -> str:
    items = "\n".join(
        f'    <li><a href="{escape(root + path)}">{escape(label)}</a> '
        f"<code>{escape(path)}</code></li>"
        for path, label in LINKS.values()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>dagship {escape(__version__)}</title>
</head>
<body>
  <h1>dagship {escape(__version__)}</h1>
  <p>The dagship deploy server: the <code>dagship</code> CLI, CI and Airflow's DAG bundle
  talk to it over the HTTP API under <code>/api/v1</code>.</p>
  <ul>
{items}
  </ul>
</body>
</html>
"""
