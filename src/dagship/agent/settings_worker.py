"""Apply connections, pools and variables to Airflow's database, in one transaction.

The agent starts this script with the environment's interpreter (``agent/settings.py``), so it
needs only the standard library and Airflow; dagship itself is not installed there. It reads the
entries as JSON on stdin (``{"connections": [...], "pools": [...], "variables": [...]}``, as
``read_airflow_settings`` makes them), creates or updates each named entry, leaves every other
entry alone, and prints ``{"connections": N, "pools": N, "variables": N}``. Any error rolls the
whole transaction back and exits non-zero with the traceback on stderr.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> int:
    entries = json.load(sys.stdin)
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:  # commits at the end, rolls back on any error
        for fields in entries["connections"]:
            _connection(session, Connection, select, fields)
        for fields in entries["pools"]:
            pool = session.scalar(select(Pool).where(Pool.pool == fields["name"]))
            if pool is None:
                pool = Pool(pool=fields["name"], slots=0, description="", include_deferred=False)
                session.add(pool)
            pool.slots = fields["slots"]
            pool.description = fields["description"]
        for fields in entries["variables"]:
            variable = session.scalar(select(Variable).where(Variable.key == fields["key"]))
            if variable is None:
                session.add(Variable(key=fields["key"], val=fields["value"]))
            else:
                variable.set_val(fields["value"])
    counts = {kind: len(entries[kind]) for kind in ("connections", "pools", "variables")}
    print(json.dumps(counts))
    return 0


def _connection(session: Any, connection: Any, select: Any, fields: dict[str, Any]) -> None:
    """Create the connection, or replace the one with its id."""
    parts = ("conn_type", "host", "schema", "login", "password", "port")
    if fields["uri"] and not any(fields[part] for part in parts):
        new = connection(conn_id=fields["conn_id"], uri=fields["uri"])
    else:
        new = connection(conn_id=fields["conn_id"], **{part: fields[part] for part in parts})
    if fields["extra"] is not None:
        new.extra = fields["extra"]
    existing = session.scalar(select(connection).where(connection.conn_id == fields["conn_id"]))
    if existing is not None:
        # Replaced as a whole (Airflow's setters keep a password or extra set to None).
        session.delete(existing)
        session.flush()
    session.add(new)


if __name__ == "__main__":
    sys.exit(main())
