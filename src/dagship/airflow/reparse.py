"""Ask Airflow's DAG processor to parse changed files next, through its priority queue.

Airflow 3's DAG processor re-queues a file whose content changed only when its parse queue
runs empty (and, in ``modified_time`` mode, only if its mtime is newer than its last parse),
so in a large bundle an edited file can wait for a whole parsing cycle. Rows in
``dag_priority_parsing_request`` (what the UI's "reparse" button writes) are claimed by the
processor on its next loop, about once a second, and put at the very front of the queue.
The bundle's ``refresh()`` runs inside the DAG processor, which has database access.

The import errors recorded for those files are deleted in the same transaction: they are about
the previous version (the file changed, or a module it imports did), and the parse requested
records them again if the file still fails. Airflow's import errors carry a time but no bundle
version, so without this a file parsed on Airflow's normal schedule between a deploy and the
switch to it would show an error newer than the deploy that is not about the deploy's code.
"""

from __future__ import annotations

from collections.abc import Iterable

# What Airflow's file discovery can load as DAGs: Python files and zipped DAG packages.
_PARSEABLE = (".py", ".zip")
# Bound the bind parameters per query (SQLite allows 999 in old builds).
_CHUNK = 500


def parseable(paths: Iterable[str]) -> list[str]:
    return sorted({p for p in paths if p.endswith(_PARSEABLE)})


def request_reparse(bundle_name: str, paths: list[str]) -> int:
    """File a priority parsing request for each path not already requested, delete the import
    errors of every path; return how many requests were filed.

    Raises whatever the database raises (no metadata database, missing table); callers treat
    this as best-effort.
    """
    if not paths:
        return 0
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import Table, delete, insert, select

    # Core statements on the tables: the ORM would first configure every Airflow mapper (about
    # a second, once per process), which is pointless for a few plain statements.
    table: Table = DagPriorityParsingRequest.__table__
    errors: Table = ParseImportError.__table__
    with create_session() as session:
        pending: set[str] = set()
        for start in range(0, len(paths), _CHUNK):
            chunk = paths[start : start + _CHUNK]
            session.execute(
                delete(errors).where(
                    errors.c.bundle_name == bundle_name, errors.c.filename.in_(chunk)
                )
            )
            pending.update(
                session.scalars(
                    select(table.c.relative_fileloc).where(
                        table.c.bundle_name == bundle_name, table.c.relative_fileloc.in_(chunk)
                    )
                )
            )
        new = [p for p in paths if p not in pending]
        if new:
            session.execute(
                insert(table), [{"bundle_name": bundle_name, "relative_fileloc": p} for p in new]
            )
    return len(new)
