"""How server processes learn that a deployment's current deploy changed, or a token was
revoked.

Each deployment's state is its row id and ``current_seq`` (bumped in every deploy's
transaction): one small query reads it for all deployments at once. Revocations are counted:
tokens are never deleted nor un-revoked, so a new count means a new revocation. On PostgreSQL
the transaction that changes either also sends ``NOTIFY dagship_deploys`` (delivered at
commit, to every server process listening on the database), so other processes need not wait
for their next read.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from dagship.server.db.models import Deployment, Token

CHANNEL = "dagship_deploys"

# name -> (row id, current_seq): a deleted and re-created deployment reads as a change.
DeploymentStates = dict[str, tuple[int, int]]


def deployment_states(session: Session) -> DeploymentStates:
    rows = session.execute(select(Deployment.name, Deployment.id, Deployment.current_seq))
    return {name: (row_id, seq) for name, row_id, seq in rows}


def revoked_tokens(session: Session) -> int:
    """How many tokens have ever been revoked."""
    return session.scalar(select(func.count(Token.revoked_at))) or 0


def announce(session: Session, name: str) -> None:
    """Tell every server process on this PostgreSQL database, when the caller's transaction
    commits, that ``name`` changed; nothing on SQLite (its processes read the states instead)."""
    _notify(session, name)


def announce_revocation(session: Session) -> None:
    """Tell every server process, when the caller's transaction commits, that a token was
    revoked: they forget the tokens they verified (services/verified_tokens.py)."""
    _notify(session, "")


def _notify(session: Session, name: str) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name}
        )
