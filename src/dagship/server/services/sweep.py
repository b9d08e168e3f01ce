"""The server's periodic clean-up of idle preview deployments."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dagship.server.db.engine import Database
from dagship.server.services.previews import delete_idle
from dagship.server.services.verified_tokens import VerifiedTokens
from dagship.server.settings import Settings

# Uvicorn's logger: the one `dagship server` prints at INFO, so operators see each deletion.
log = logging.getLogger("uvicorn.error")

# The PostgreSQL advisory lock a sweep holds for its transaction: of several servers on one
# database, one sweeps at a time and the others skip that round.
SWEEP_LOCK = 0x64616773


async def sweep_previews(settings: Settings, database: Database, verified: VerifiedTokens) -> None:
    """Every sweep interval, delete previews idle longer than the idle timeout (their tokens
    are revoked: ``verified`` forgets what it knew); runs until cancelled. With the timeout
    off it returns at once."""
    idle = settings.preview_idle_timeout
    if idle is None:
        return
    while True:
        await asyncio.sleep(settings.preview_sweep_interval)
        try:
            # In a thread: the database calls are blocking and requests must keep flowing.
            names = await asyncio.to_thread(_sweep_once, database, idle)
        except SQLAlchemyError:
            # A database hiccup must not stop future sweeps; the next one retries.
            log.exception("preview clean-up failed; retrying at the next sweep")
            continue
        if names:
            verified.forget_all()
        for name in names:
            log.info("deleted preview %s: idle for more than %g seconds", name, idle)


def _sweep_once(database: Database, idle: float) -> list[str]:
    with database.writing() as session:
        if session.get_bind().dialect.name == "postgresql":
            taken = session.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK}
            )
            if not taken.scalar():
                return []
        return [preview.deployment.name for preview in delete_idle(session, idle)]
