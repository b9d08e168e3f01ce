"""The HTTP API's requests and responses (docs/api.md), as Pydantic models.

The server declares its routes with these models and ``ApiClient`` returns them, so a change
to the contract is a type error on both sides. Nothing here knows the database: the server
builds responses from its rows in ``dagship.server.views``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from dagship.core.manifest import DIGEST_PATTERN
from dagship.core.naming import DEPLOYMENT_NAME
from dagship.core.vocabulary import (
    AgentState,
    AirflowState,
    CheckOutcome,
    Component,
    Kind,
    Origin,
    Role,
)

UtcTime = Annotated[
    datetime,
    PlainSerializer(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
]

MANIFEST_FILE_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "sha256": {"type": "string", "pattern": DIGEST_PATTERN},
        "size": {"type": "integer", "minimum": 0},
        "executable": {"type": "boolean", "default": False},
    },
    "required": ["path", "sha256", "size"],
}
# Entries are checked by dagship.core.manifest rather than Pydantic, so every bad
# entry gets the same `bad_manifest` error naming its path.
ManifestEntries = Annotated[
    list[dict[str, Any]], WithJsonSchema({"type": "array", "items": MANIFEST_FILE_SCHEMA})
]


class Model(BaseModel):
    """The API's models build their validators on first use, not at import: a CLI command
    uses a handful of them and should not pay for all."""

    model_config = ConfigDict(defer_build=True)


class ErrorOut(Model):
    detail: str
    code: str


class HealthOut(Model):
    status: str
    version: str


class InfoOut(Model):
    version: str
    max_blob_size: int


class Checks(Model):
    """What the deploying client checked before deploying (docs/validate.md)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    parse: CheckOutcome = CheckOutcome.NOT_RUN
    pytest: CheckOutcome = CheckOutcome.NOT_RUN


class S3Source(Model):
    """Where a deploy of origin ``s3`` came from: the prefix synced and its newest object
    (by last-modified time) at the time of the sync (docs/s3.md)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    bucket: str = Field(min_length=3, max_length=255)
    prefix: str = Field(default="", max_length=1024)
    newest_key: str | None = Field(default=None, max_length=1024)
    newest_version_id: str | None = Field(default=None, max_length=1024)
    newest_modified_at: UtcTime | None = None


class DeployOut(Model):
    id: str
    seq: int
    deployment: str
    kind: Kind
    origin: Origin
    dags_version: str
    project_version: str
    dags_files: int
    project_files: int
    uploaded_files: int
    uploaded_bytes: int
    created_at: UtcTime
    token_id: str | None
    # What the token that made it is for ("" when its creator gave none), shown as who deployed.
    token_description: str | None = None
    git_sha: str | None
    git_branch: str | None
    git_author: str | None
    git_message: str | None
    # True: the files deployed differed from commit git_sha (uncommitted changes).
    git_dirty: bool | None = None
    description: str | None
    source_deploy_id: str | None
    checks: Checks
    source_deployment: str | None
    source_seq: int | None
    # Set on deploys of origin s3 only.
    s3_source: S3Source | None = None


# The Airflow of a deployment: the base URL of its API server (REST API v2 under /api/v2).
AirflowUrl = Annotated[str, Field(max_length=2048, pattern=r"^(https?://[^\s/?#]+[^\s?#]*)?$")]
BundleName = Annotated[str, Field(max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")]


class DeploymentCreate(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: str = Field(pattern=DEPLOYMENT_NAME)
    description: str = ""
    dag_deploys: bool = True
    airflow_url: AirflowUrl | None = None
    airflow_bundle: BundleName | None = None


class DeploymentUpdate(Model):
    """Fields left out are unchanged; ``airflow_url``/``airflow_bundle`` null or "" clear it."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    description: str | None = None
    dag_deploys: bool | None = None
    airflow_url: AirflowUrl | None = None
    airflow_bundle: BundleName | Literal[""] | None = None


class DeploymentOut(Model):
    name: str
    description: str
    dag_deploys: bool
    airflow_url: str | None
    airflow_bundle: str
    created_at: UtcTime
    preview_source: str | None
    preview_branch: str | None
    current: DeployOut | None
    # The agents that have reported for this deployment, newest report first.
    agents: list[AgentOut] = Field(default_factory=list)


class TokenCreate(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    role: Role
    deployment: str | None = None
    expires_in_seconds: int | None = Field(default=None, gt=0, le=100 * 365 * 24 * 3600)
    description: str = ""


class TokenOut(Model):
    id: str
    role: Role
    deployment: str | None
    description: str
    created_at: UtcTime
    expires_at: UtcTime | None
    revoked_at: UtcTime | None
    last_used_at: UtcTime | None


class TokenCreated(TokenOut):
    token: str


class MissingRequest(Model):
    digests: list[str] = Field(max_length=100_000)
    # The deploy these blobs are for: when given, a deploy that would be refused (role,
    # binding, DAG deploys disabled, unknown deployment) is refused now, before any upload.
    deployment: str | None = None
    kind: Kind | None = None


class MissingOut(Model):
    missing: list[str]


class BlobOut(Model):
    digest: str
    size: int
    created: bool


class ManifestFile(Model):
    path: str
    sha256: str
    size: int
    executable: bool = False


class ManifestOut(Model):
    version: str
    files: list[ManifestFile]


class DeployRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    kind: Kind
    dags_manifest: ManifestEntries | None = None
    project_manifest: ManifestEntries | None = None
    expect_seq: int | None = Field(default=None, ge=0)
    # Clients send cli or ci; s3 and promote are for dagship's own integrations. Origin s3
    # is accepted only with ``s3_source`` on a DAG-only deploy (`dagship s3 sync`).
    origin: Literal[Origin.CLI, Origin.CI, Origin.S3, Origin.PROMOTE] = Origin.CLI
    s3_source: S3Source | None = None
    description: str | None = None
    uploaded_files: int = Field(default=0, ge=0)
    uploaded_bytes: int = Field(default=0, ge=0)
    git_sha: str | None = None
    git_branch: str | None = None
    git_author: str | None = None
    git_message: str | None = None
    # True when the project's files differ from git_sha: the deploy is not that commit.
    git_dirty: bool | None = None
    checks: Checks = Field(default_factory=Checks)


class TreeDiffOut(Model):
    added: list[str]
    removed: list[str]
    changed: list[str]


class DiffOut(Model):
    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    from_: DeployOut = Field(alias="from")
    to: DeployOut
    dags: TreeDiffOut
    project: TreeDiffOut


class RollbackRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    to_seq: int | None = None
    expect_seq: int | None = Field(default=None, ge=0)
    description: str | None = None


class RollbackOut(Model):
    unchanged: bool
    # The new deploy; the current one when unchanged.
    deploy: DeployOut
    # The earlier deploy whose versions it runs (None from servers before it was added).
    source: DeployOut | None = None


class PromoteRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    source: str = Field(description="The deployment whose deploy is promoted.")
    seq: int | None = Field(default=None, ge=1, description="The source's deploy; default current.")
    expect_seq: int | None = Field(default=None, ge=0)
    description: str | None = None
    dry_run: bool = False


class PromoteOut(Model):
    unchanged: bool
    dry_run: bool
    # What the promotion changes (and so which role it needs); None when unchanged.
    kind: Kind | None
    source: DeployOut
    # The new deploy; the target's current deploy when unchanged or dry_run (None if it has none).
    deploy: DeployOut | None


class PreviewCreate(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    source: str
    branch: str = Field(min_length=1, max_length=1000)
    airflow_url: AirflowUrl | None = None


class PreviewOut(Model):
    name: str
    source: str
    branch: str
    airflow_url: str | None
    created_at: UtcTime
    last_activity_at: UtcTime
    current: DeployOut | None


class PreviewCreated(Model):
    created: bool
    preview: PreviewOut
    deploy: DeployOut | None


class PreviewDeleted(Model):
    deleted: bool
    name: str
    branch: str | None


class CleanupRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    idle_seconds: float | None = Field(default=None, gt=0)


class CleanupOut(Model):
    idle_seconds: float
    deleted: list[PreviewOut]


class ProjectCurrentOut(Model):
    """The deployment's current project version: what its agents run (docs/agent.md)."""

    deployment: str
    version: str
    deploy_id: str
    seq: int
    files: list[ManifestFile]


AGENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$"
# A project version (``sha256-`` and 64 hex digits), or "" for none.
MaybeVersion = Annotated[str, Field(pattern=r"^(sha256-[0-9a-f]{64})?$")]


class AgentReport(Model):
    """What an agent reports about itself (``PUT .../agents/{agent_id}``)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    home: str = Field(default="", max_length=4096)
    components: list[Component] = Field(min_length=1, max_length=len(Component))
    state: AgentState
    # The project version the host's components run now ("" before the first apply), and the
    # one it is applying (building or starting), if any.
    project_version: MaybeVersion = ""
    target_version: MaybeVersion = ""
    # The last lines of the error of a failed apply.
    error: str = Field(default="", max_length=20_000)
    airflow_version: str = Field(default="", max_length=64)


class AgentOut(Model):
    id: str
    deployment: str
    host: str
    home: str
    components: list[Component]
    state: AgentState
    project_version: str
    target_version: str
    error: str
    airflow_version: str
    first_seen_at: UtcTime
    last_seen_at: UtcTime
    # Whether it reported within the last minute: only those count for ``--wait``.
    active: bool

    def runs(self, version: str) -> bool:
        """Whether the agent's components run project ``version`` (not merely restarting on
        it): what ``--wait`` waits for on every active agent."""
        return self.project_version == version and self.state not in (
            AgentState.WAITING,
            AgentState.STARTING,
        )

    def failed_on(self, version: str) -> bool:
        """Whether the agent's last apply, of project ``version``, failed."""
        return self.state == AgentState.FAILED and self.target_version == version

    @property
    def error_line(self) -> str:
        """The last non-blank line of the error: its summary, as in a traceback."""
        lines = [line.strip() for line in self.error.splitlines() if line.strip()]
        return lines[-1] if lines else ""


class DagsCurrentOut(Model):
    deployment: str
    version: str
    deploy_id: str
    seq: int
    files: list[ManifestFile]


class ImportErrorOut(Model):
    filename: str
    stack_trace: str
    timestamp: str | None = None


class AirflowFilesOut(Model):
    """The DAG files Airflow must parse at a deploy's version: ``expected`` of them, those not
    parsed yet (``pending``), and which of them are ``importers`` (unchanged files awaited
    because they import a module the deploy added, changed or removed)."""

    expected: int
    parsed: int
    pending: list[str]
    importers: list[str] = Field(default_factory=list)


class DeployAirflowOut(Model):
    """What the deployment's Airflow made of a deploy's DAG version (docs/api.md)."""

    deploy_id: str
    seq: int
    deployment: str
    dags_version: str
    airflow_url: str | None
    bundle_name: str
    state: AirflowState
    done: bool
    reachable: bool
    dags: list[str]
    import_errors: list[ImportErrorOut]
    files: AirflowFilesOut
    reparse_requested: list[str]
    detail: str
    # Whether the deploy changes the project version; then ``agents`` are the deployment's
    # active agents, which must all run it before the DAG check counts (docs/agent.md).
    project_changed: bool = False
    agents: list[AgentOut] = Field(default_factory=list)
    project_version: str = ""
