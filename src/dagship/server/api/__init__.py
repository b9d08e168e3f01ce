"""HTTP routes, one module per concept; each route calls one service function."""

from __future__ import annotations

from fastapi import APIRouter

from dagship.server.api import (
    agents,
    blobs,
    deployments,
    deploys,
    manifests,
    previews,
    promote,
    tokens,
)

api_router = APIRouter(prefix="/api/v1")
for module in (deployments, tokens, blobs, manifests, deploys, promote, previews, agents):
    api_router.include_router(module.router)
