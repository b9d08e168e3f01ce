"""Liveness and server facts (without a token), and this process's stats (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from dagship import __version__
from dagship.core.schemas import HealthOut, InfoOut, ServerStatsOut
from dagship.server.deps import Admin, DatabaseDep, EventsDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> HealthOut:
    return HealthOut(status="ok", version=__version__)


@router.get("/api/v1/info")
def info(settings: SettingsDep) -> InfoOut:
    return InfoOut(version=__version__, max_blob_size=settings.max_blob_size)


@router.get("/api/v1/server/stats")
def server_stats(database: DatabaseDep, events: EventsDep, _token: Admin) -> ServerStatsOut:
    """Counters of the server process that answers (each process behind a load balancer has
    its own)."""
    return ServerStatsOut(
        long_polls_waiting=events.waiting,
        deployment_checks=events.checks,
        database_statements=database.statements,
    )
