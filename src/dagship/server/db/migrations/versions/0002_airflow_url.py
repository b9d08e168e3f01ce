"""Deployments know their Airflow: airflow_url and the bundle name used there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: a plain ADD COLUMN on SQLite and PostgreSQL alike.
    op.add_column("deployments", sa.Column("airflow_url", sa.String(2048), nullable=True))
    op.add_column("deployments", sa.Column("airflow_bundle", sa.String(250), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("airflow_bundle")
        batch.drop_column("airflow_url")
