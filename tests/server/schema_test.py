"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL.

As Airflow's ``test_database_schema_and_sqlalchemy_model_are_in_sync``: a model changed without
a migration (or a migration that builds something else) fails here, not in a deploy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine

from dagship.server.db.migrate import upgrade
from dagship.server.db.models import Base
from tests.helpers import BACKENDS, create_pg_database, drop_pg_database


@pytest.fixture(params=BACKENDS)
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a new, empty database of each backend."""
    pg_name = None
    if request.param == "postgresql":
        pg_name, url = create_pg_database()
    else:
        url = f"sqlite:///{tmp_path / 'dagship.db'}"
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        if pg_name is not None:
            drop_pg_database(pg_name)


def test_database_schema_and_models_are_in_sync(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        drift = compare_metadata(context, Base.metadata)
    assert drift == [], "models and migrations differ:\n" + "\n".join(map(str, drift))
