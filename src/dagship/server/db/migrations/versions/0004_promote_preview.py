"""Promotion provenance on deploys, and preview deployments.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: a plain ADD COLUMN on SQLite and PostgreSQL alike.
    op.add_column("deploys", sa.Column("source_deployment", sa.String(63), nullable=True))
    op.add_column("deploys", sa.Column("source_seq", sa.Integer(), nullable=True))
    op.add_column("deployments", sa.Column("preview_source", sa.String(63), nullable=True))
    op.add_column("deployments", sa.Column("preview_branch", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("preview_branch")
        batch.drop_column("preview_source")
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("source_seq")
        batch.drop_column("source_deployment")
