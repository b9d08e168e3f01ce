"""Airflow URLs record who chose them; deployments hold their own Airflow credentials.

Before this, an operator creating a preview could give it any Airflow URL, and the server
sent its Airflow credentials there. Deployments' URLs were set by admins (``admin``); a
preview's URL was given by whoever created it, so it becomes ``unconfirmed``: the server does
not contact it until an admin sets it again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("airflow_url_from", sa.String(16), nullable=True))
    op.add_column("deployments", sa.Column("airflow_credentials", sa.Text(), nullable=True))
    deployments = sa.table(
        "deployments",
        sa.column("airflow_url", sa.String),
        sa.column("airflow_url_from", sa.String),
        sa.column("preview_branch", sa.Text),
    )
    with_url = deployments.c.airflow_url.is_not(None)
    op.execute(
        deployments.update()
        .where(with_url, deployments.c.preview_branch.is_(None))
        .values(airflow_url_from="admin")
    )
    op.execute(
        deployments.update()
        .where(with_url, deployments.c.preview_branch.is_not(None))
        .values(airflow_url_from="unconfirmed")
    )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("airflow_credentials")
        batch.drop_column("airflow_url_from")
