"""Initial schema: deployments, tokens, blobs, manifests, manifest_files, deploys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("dag_deploys", sa.Boolean(), nullable=False),
        sa.Column("current_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column(
            "deployment_id",
            sa.Integer(),
            sa.ForeignKey("deployments.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("version", sa.String(71), primary_key=True),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "manifest_files",
        sa.Column("version", sa.String(71), sa.ForeignKey("manifests.version"), primary_key=True),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("executable", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_manifest_files_digest", "manifest_files", ["digest"])
    op.create_table(
        "deploys",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column(
            "deployment_id",
            sa.Integer(),
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column(
            "dags_version", sa.String(71), sa.ForeignKey("manifests.version"), nullable=False
        ),
        sa.Column(
            "project_version", sa.String(71), sa.ForeignKey("manifests.version"), nullable=False
        ),
        sa.Column("uploaded_files", sa.Integer(), nullable=False),
        sa.Column("uploaded_bytes", sa.BigInteger(), nullable=False),
        sa.Column("token_id", sa.String(16), sa.ForeignKey("tokens.id"), nullable=True),
        sa.Column("git_sha", sa.Text(), nullable=True),
        sa.Column("git_branch", sa.Text(), nullable=True),
        sa.Column("git_author", sa.Text(), nullable=True),
        sa.Column("git_message", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source_deploy_id", sa.String(20), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("deployment_id", "seq", name="uq_deploys_deployment_seq"),
    )
    op.create_index("ix_deploys_dags_version", "deploys", ["dags_version"])
    op.create_index("ix_deploys_project_version", "deploys", ["project_version"])


def downgrade() -> None:
    op.drop_table("deploys")
    op.drop_table("manifest_files")
    op.drop_table("manifests")
    op.drop_table("blobs")
    op.drop_table("tokens")
    op.drop_table("deployments")
