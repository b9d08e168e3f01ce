"""How server processes learn that a deployment's current deploy changed.

Each deployment's state is its row id and ``current_seq`` (bumped in every deploy's
transaction): one small query reads it for all deployments at once. On PostgreSQL the
transaction that changes it also sends ``NOTIFY dagship_deploys`` (delivered at commit, to every
server process listening on the database), so other processes need not wait for their next read.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dagship.server.db.models import Deployment

CHANNEL = "dagship_deploys"

# name -> (row id, current_seq): a deleted and re-created deployment reads as a change.
DeploymentStates = dict[str, tuple[int, int]]


def deployment_states(session: Session) -> DeploymentStates:
    rows = session.execute(select(Deployment.name, Deployment.id, Deployment.current_seq))
    return {name: (row_id, seq) for name, row_id, seq in rows}


def announce(session: Session, name: str) -> None:
    """Tell every server process on this PostgreSQL database, when the caller's transaction
    commits, that ``name`` changed; nothing on SQLite (its processes read the states instead)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name}
        )
