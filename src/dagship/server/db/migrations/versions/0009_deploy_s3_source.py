"""Where an S3 deploy's files came from: bucket, prefix and the newest object.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only deploys made by `dagship s3 sync` (origin s3) have one.
    op.add_column("deploys", sa.Column("s3_source", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deploys") as batch:
        batch.drop_column("s3_source")
