"""Deploys record the checks the client ran before deploying (parse, pytest).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: a plain ADD COLUMN on SQLite and PostgreSQL alike. Deploys
    # made before this revision read as "not-run" for every check.
    op.add_column("deploys", sa.Column("checks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("checks")
