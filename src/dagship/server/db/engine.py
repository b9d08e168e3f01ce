"""Engines and sessions, with the SQLite settings concurrent deploys need.

SQLite: WAL so readers never block the writer, synchronous=FULL, foreign keys on, a 30 s
busy timeout, and write sessions open their transaction with BEGIN IMMEDIATE. A deferred transaction
that reads and then writes can fail with "database is locked" when two of them try to
upgrade at once; taking the write lock up front makes concurrent deploys queue instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_SECONDS = 30
_WRITE_OPTION = "dagship_write"


class Database:
    """One engine, handing out read sessions and write sessions."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        # Statements sent, for the server's stats; += from several threads may lose a count,
        # which a figure for people can afford.
        self.statements = 0
        event.listen(self.engine, "before_cursor_execute", self._count)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    def read_session(self) -> Session:
        return self._read()

    def write_session(self) -> Session:
        return self._write()

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """A write session that commits when the block succeeds."""
        with self.write_session() as session, session.begin():
            yield session

    def _count(self, *_args: Any) -> None:
        self.statements += 1

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
            pool_size=10,
            max_overflow=20,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop pysqlite from issuing its own BEGIN; the "begin" hook below does it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: a deploy acknowledged to a client must survive a power cut,
        # or its seq could be handed out a second time.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
