"""Alembic environment: runs on the engine handed over by dagship.server.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from dagship.server.db.models import Base

engine: Engine | None = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through dagship.server.db.migrate.upgrade()")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
