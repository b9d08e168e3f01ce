"""The database tables, as typed SQLAlchemy 2 models.

Times are stored as naive UTC datetimes so SQLite and PostgreSQL round-trip the same
values; schemas.py renders them as ISO 8601 with a trailing Z.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

from dagship.core.naming import bundle_name


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    dag_deploys: Mapped[bool] = mapped_column(Boolean, default=True)
    # The seq of the newest deploy; 0 before the first. Bumped in the deploy's transaction.
    current_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The Airflow this deployment's code runs in (REST API base URL), followed after deploys.
    airflow_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # Who chose airflow_url (dagship.core.vocabulary.AirflowUrlFrom): it decides which
    # credentials the server sends there. None without a URL.
    airflow_url_from: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The credentials for that Airflow, set by an admin: JSON encrypted with the server's
    # secret key (server/secrets.py), never returned by any route.
    airflow_credentials: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The DAG bundle's name in that Airflow; None means the default, dagship-<name>.
    airflow_bundle: Mapped[str | None] = mapped_column(String(250), nullable=True)
    # Set for preview deployments: the deployment it was created from, and the branch it
    # previews (the name is derived from the branch; see dagship.core.naming).
    preview_source: Mapped[str | None] = mapped_column(String(63), nullable=True)
    preview_branch: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Guard rails (docs/guard-rails.md): a deploy removing more than this share of the current DAG
    # files, and at least min_removals of them, needs allow_removals.
    max_removal_ratio: Mapped[float] = mapped_column(Float, default=0.5, server_default="0.5")
    min_removals: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    # Protected: only promotions (from promote_from when set) unless the token is admin.
    promote_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    promote_from: Mapped[str | None] = mapped_column(String(63), nullable=True)

    @property
    def bundle_name(self) -> str:
        return self.airflow_bundle or bundle_name(self.name)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # Set to NULL when the deployment is deleted; the token is revoked at the same time.
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    deployment: Mapped[Deployment | None] = relationship(lazy="joined")


class Blob(Base):
    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Manifest(Base):
    __tablename__ = "manifests"

    version: Mapped[str] = mapped_column(String(71), primary_key=True)
    file_count: Mapped[int] = mapped_column(Integer)
    total_size: Mapped[int] = mapped_column(BigInteger)
    # Canonical JSON (dagship.core.manifest), served as-is so reads need no re-encoding.
    body: Mapped[str] = deferred(mapped_column(Text, nullable=False))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ManifestFile(Base):
    """One row per file of a manifest, so blob reads can be checked against deployments."""

    __tablename__ = "manifest_files"
    __table_args__ = (Index("ix_manifest_files_digest", "digest"),)

    version: Mapped[str] = mapped_column(ForeignKey("manifests.version"), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    executable: Mapped[bool] = mapped_column(Boolean, default=False)


class Deploy(Base):
    __tablename__ = "deploys"
    __table_args__ = (
        UniqueConstraint("deployment_id", "seq", name="uq_deploys_deployment_seq"),
        Index("ix_deploys_dags_version", "dags_version"),
        Index("ix_deploys_project_version", "project_version"),
    )

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16))
    dags_version: Mapped[str] = mapped_column(ForeignKey("manifests.version"))
    project_version: Mapped[str] = mapped_column(ForeignKey("manifests.version"))
    uploaded_files: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # DAG files of the previous deploy that this one no longer has; None for deploys made
    # before it was counted.
    dags_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    token_id: Mapped[str | None] = mapped_column(ForeignKey("tokens.id"), nullable=True)
    git_sha: Mapped[str | None] = mapped_column(Text, nullable=True)
    git_branch: Mapped[str | None] = mapped_column(Text, nullable=True)
    git_author: Mapped[str | None] = mapped_column(Text, nullable=True)
    git_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # True when the deployed files differed from git_sha; None when unknown (older clients).
    git_dirty: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Not a foreign key: the source may belong to another deployment that is later deleted.
    source_deploy_id: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # What the client checked before deploying, e.g. {"parse": "passed", "pytest": "not-run"};
    # None for deploys that ran no checks (rollbacks, older clients).
    checks: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # A promotion's source by name and seq, kept readable after the source is deleted.
    source_deployment: Mapped[str | None] = mapped_column(String(63), nullable=True)
    source_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # An S3 deploy's bucket, prefix and newest object (core.schemas.S3Source); None otherwise.
    s3_source: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    deployment: Mapped[Deployment] = relationship(lazy="joined")
    # Who made it, for the history: the token's description.
    token: Mapped[Token | None] = relationship(lazy="joined")
    dags_manifest: Mapped[Manifest] = relationship(foreign_keys=[dags_version], lazy="joined")
    project_manifest: Mapped[Manifest] = relationship(foreign_keys=[project_version], lazy="joined")


class Agent(Base):
    """The last report of one ``dagship agent`` of a deployment (one per host and home)."""

    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_deployment_last_seen", "deployment_id", "last_seen_at"),)

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    home: Mapped[str] = mapped_column(Text, default="")
    # Component names (dagship.core.vocabulary.Component), as the agent listed them.
    components: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    project_version: Mapped[str] = mapped_column(String(71), default="")
    target_version: Mapped[str] = mapped_column(String(71), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    airflow_version: Mapped[str] = mapped_column(String(64), default="")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    deployment: Mapped[Deployment] = relationship(lazy="joined")
