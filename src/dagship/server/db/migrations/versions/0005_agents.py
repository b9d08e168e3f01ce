"""Agents: the last report of each ``dagship agent`` of a deployment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column(
            "deployment_id",
            sa.Integer(),
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("home", sa.Text(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("project_version", sa.String(71), nullable=False),
        sa.Column("target_version", sa.String(71), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("airflow_version", sa.String(64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_agents_deployment_last_seen", "agents", ["deployment_id", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_agents_deployment_last_seen", table_name="agents")
    op.drop_table("agents")
