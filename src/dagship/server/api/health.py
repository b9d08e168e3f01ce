"""Liveness and server facts; both answer without a token."""

from __future__ import annotations

from fastapi import APIRouter

from dagship import __version__
from dagship.core.schemas import HealthOut, InfoOut
from dagship.server.deps import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get("/api/v1/info")
def info(settings: SettingsDep) -> InfoOut:
    return InfoOut(version=__version__, max_blob_size=settings.max_blob_size)
