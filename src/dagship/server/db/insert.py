"""INSERT ... ON CONFLICT DO NOTHING for both supported databases.

Blobs and manifests are content-addressed, so two requests may store the same row at
once; the second insert is then simply a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dagship.server.db.models import Base


def insert_ignore(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping those whose key exists; returns how many were inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    # RETURNING tells which rows were inserted; rowcount is -1 on psycopg for this.
    mapper = inspect(model)
    statement = module.insert(mapper.local_table).on_conflict_do_nothing()
    statement = statement.returning(mapper.primary_key[0])
    result = session.execute(statement, rows[0] if len(rows) == 1 else list(rows))
    return len(result.all())
