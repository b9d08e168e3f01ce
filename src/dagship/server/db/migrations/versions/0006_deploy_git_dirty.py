"""Whether a deploy's files differed from its git commit (uncommitted changes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: deploys made before this column say nothing about it.
    op.add_column("deploys", sa.Column("git_dirty", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("git_dirty")
