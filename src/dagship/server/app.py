"""The FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from dagship import __version__
from dagship.core.schemas import ErrorOut
from dagship.server.api import api_router, errors, health, home
from dagship.server.db.engine import Database
from dagship.server.db.migrate import upgrade
from dagship.server.events import DeployEvents
from dagship.server.guard import RequestGuard
from dagship.server.secret_box import SecretBox
from dagship.server.services.airflow import AirflowFollower
from dagship.server.services.sweep import sweep_previews
from dagship.server.services.verified_tokens import VerifiedTokens
from dagship.server.settings import Settings
from dagship.server.store import open_store

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422)
}


def migrated_database(settings: Settings) -> Database:
    """The database of `settings`, with its schema brought up to date."""
    database = Database(settings.database_url)
    upgrade(database.engine)
    return database


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    """The app for `settings`; without `database`, it opens and migrates its own."""
    database = database or migrated_database(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(sweep_previews(settings, database, verified))
        watcher = asyncio.create_task(events.watch())
        yield
        for task in (sweeper, watcher):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        follower.close()
        database.dispose()

    # /docs and /redoc load their scripts and styles from this package (under /docs/assets),
    # never from a CDN; Swagger UI's online validator is off, so no page reaches the internet.
    app = FastAPIOffline(
        title="dagship",
        version=__version__,
        description="Self-hosted deploys for Apache Airflow projects.",
        lifespan=lifespan,
        static_url="/docs/assets",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.database = database
    app.state.store = open_store(settings.storage_url, settings.home)
    app.state.secrets = secrets = SecretBox(settings.secret_keys, settings.home)
    app.state.airflow = follower = AirflowFollower(settings.airflow, secrets)
    app.state.verified_tokens = verified = VerifiedTokens()
    app.state.events = events = DeployEvents(database, verified)
    errors.install(app)
    app.add_middleware(
        RequestGuard, database=database, verified=verified, max_bytes=settings.max_request_bytes
    )
    app.include_router(home.router)
    app.include_router(health.router)
    app.include_router(api_router, responses=ERROR_RESPONSES)
    return app
