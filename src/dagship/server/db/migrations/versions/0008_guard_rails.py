"""Guard rails: removal thresholds and promote-only per deployment, removed DAG files per deploy.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# How many DAG files each deploy removed from the deploy before it (seq - 1): what the history
# shows for deploys made before the column existed. Plain SQL that SQLite and PostgreSQL share.
BACKFILL = """
UPDATE deploys SET dags_removed = (
    SELECT COUNT(*) FROM manifest_files gone
    JOIN deploys previous ON previous.dags_version = gone.version
    WHERE previous.deployment_id = deploys.deployment_id
      AND previous.seq = deploys.seq - 1
      AND gone.path NOT IN (
          SELECT kept.path FROM manifest_files kept WHERE kept.version = deploys.dags_version
      )
)
"""


def upgrade() -> None:
    # Plain ADD COLUMNs, not a batch: on SQLite a batch may copy the table and drop the old
    # one, and with foreign keys on (as the server runs migrations) dropping deployments would
    # delete every deploy through ON DELETE CASCADE.
    op.add_column(
        "deployments",
        sa.Column("max_removal_ratio", sa.Float(), nullable=False, server_default="0.5"),
    )
    op.add_column(
        "deployments", sa.Column("min_removals", sa.Integer(), nullable=False, server_default="10")
    )
    op.add_column(
        "deployments",
        sa.Column("promote_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("deployments", sa.Column("promote_from", sa.String(63), nullable=True))
    op.add_column("deploys", sa.Column("dags_removed", sa.Integer(), nullable=True))
    op.execute(BACKFILL)


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+), for the same reason as above.
    op.drop_column("deploys", "dags_removed")
    for column in ("promote_from", "promote_only", "min_removals", "max_removal_ratio"):
        op.drop_column("deployments", column)
