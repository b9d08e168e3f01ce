"""The HTTP API's requests and responses (docs/api.md), as Pydantic models.

The server declares its routes with these models and ``ApiClient`` returns them, so a change
to the contract is a type error on both sides. Nothing here knows the database: the server
builds responses from its rows in ``dagship.server.views``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from dagship.core.blobstream import MAX_DIGESTS
from dagship.core.manifest import DIGEST_PATTERN, MAX_PATH_BYTES, VERSION_PATTERN
from dagship.core.naming import DEPLOYMENT_NAME
from dagship.core.vocabulary import (
    AgentState,
    AirflowState,
    AirflowUrlFrom,
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

# What the database's columns hold: sequence numbers and counts are 32-bit, sizes 64-bit.
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
# Numbers and flags in request bodies are taken as JSON types only: "5" is not 5, 0 not false.
Seq = Annotated[int, Field(strict=True, ge=0, le=MAX_INT32)]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INT32)]
Bytes = Annotated[int, Field(strict=True, ge=0, le=MAX_INT64)]
Flag = Annotated[bool, Field(strict=True)]
# Free text from a client (descriptions, commit messages). The bound also makes Pydantic check
# the text is Unicode a database can store: a lone surrogate ("\ud800") is a 422, not a 500.
FreeText = Annotated[str, Field(max_length=65_536)]
# A deployment's name as a client sends it in a body; the services say when none has it.
NameRef = Annotated[str, Field(min_length=1, max_length=253)]
# Longest wait a cleanup may name: 100 years, in seconds.
MAX_SECONDS = 100 * 365 * 24 * 3600

MANIFEST_FILE_SCHEMA = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES},
        "sha256": {"type": "string", "pattern": DIGEST_PATTERN},
        "size": {"type": "integer", "minimum": 0, "maximum": MAX_INT64},
        "executable": {"type": "boolean", "default": False},
    },
    "required": ["path", "sha256", "size"],
    "additionalProperties": False,
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


class ServerStatsOut(Model):
    """What one server process is doing now, for operators and benchmarks."""

    long_polls_waiting: int = Field(
        description="Requests of this process held by ?wait= right now, reading nothing"
    )
    deployment_checks: int = Field(
        description="Times this process read every deployment's state to wake long polls"
    )
    database_statements: int = Field(
        description="SQL statements this process sent to the database since it started"
    )


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
    # DAG files of the deploy before it that this deploy removed (None: made before dagship
    # counted them).
    dags_removed: int | None = None
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


def check_airflow_url(url: str) -> str:
    """``url`` if it can be the base URL of an Airflow API server, else ValueError saying why:
    http(s), a host, a port in range, printable ASCII, no user or password in it (credentials
    are set apart, as ``airflow_credentials``, and never shown), no query or fragment."""
    if not url:
        return url
    if any(not " " < char < "\x7f" for char in url):
        raise ValueError("an Airflow URL is printable ASCII without spaces (IDN hosts in xn--)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an Airflow URL is http(s)://HOST[:PORT][/PATH]")
    if "@" in parts.netloc:
        raise ValueError(
            "an Airflow URL carries no user or password: give them as airflow_credentials"
        )
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ValueError("an Airflow URL has no query or fragment")
    if port == 0:
        raise ValueError("port 0 is not a port an Airflow listens on")
    return url


# The Airflow of a deployment: the base URL of its API server (REST API v2 under /api/v2).
# A host name (letters, digits, "-", "_", dots) or an IPv6 address in brackets, an optional
# port, and a path of URL characters: what an HTTP client can always connect to.
AIRFLOW_URL = (
    r"^(https?://([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?|\[[0-9A-Fa-f:.]+\])"
    r"(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?)?$"
)


AirflowUrl = Annotated[
    str,
    Field(max_length=2048, pattern=AIRFLOW_URL),
    AfterValidator(check_airflow_url),
]


class AirflowCredentials(Model):
    """How the server logs in to a deployment's Airflow: a bearer ``token``, or a ``username``
    and ``password`` exchanged at Airflow's ``POST /auth/token``. Write-only: stored encrypted,
    never returned (answers say only ``airflow_credentials_set``)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    token: str | None = Field(default=None, min_length=1, max_length=8192, repr=False)
    username: str | None = Field(default=None, min_length=1, max_length=256)
    password: str | None = Field(default=None, max_length=8192, repr=False)

    @model_validator(mode="after")
    def _one_way(self) -> AirflowCredentials:
        if self.token is not None and (self.username is not None or self.password is not None):
            raise ValueError("give a token, or a username and password, not both")
        if self.token is None and self.username is None:
            raise ValueError("give a token, or a username and password")
        return self


BundleName = Annotated[str, Field(max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")]
# The guard against deploys that remove most DAG files (docs/guard-rails.md): a
# deploy removing more than this share of the current DAG files, and at least
# ``min_removals`` of them, needs ``allow_removals``. 1 turns it off.
RemovalRatio = Annotated[float, Field(gt=0, le=1)]
MinRemovals = Annotated[int, Field(ge=1, le=1_000_000)]
DEFAULT_MAX_REMOVAL_RATIO = 0.5
DEFAULT_MIN_REMOVALS = 10


class DeploymentCreate(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: str = Field(pattern=DEPLOYMENT_NAME)
    description: FreeText = ""
    dag_deploys: Flag = True
    airflow_url: AirflowUrl | None = None
    airflow_bundle: BundleName | None = None
    airflow_credentials: AirflowCredentials | None = None


class DeploymentUpdate(Model):
    """Fields left out are unchanged; ``airflow_url``/``airflow_bundle`` null or "" clear it,
    ``airflow_credentials`` null forgets them."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    description: FreeText | None = None
    dag_deploys: Flag | None = None
    airflow_url: AirflowUrl | None = None
    airflow_bundle: BundleName | Literal[""] | None = None
    airflow_credentials: AirflowCredentials | None = None
    max_removal_ratio: RemovalRatio | None = None
    min_removals: MinRemovals | None = None
    # True: direct deploys and rollbacks need an admin token; promotions (from
    # ``promote_from``, when set; null or "" for any deployment) are accepted.
    promote_only: bool | None = None
    promote_from: Annotated[str, Field(pattern=DEPLOYMENT_NAME)] | Literal[""] | None = None


class DeploymentOut(Model):
    name: str
    description: str
    dag_deploys: bool
    airflow_url: str | None
    # Who chose airflow_url (None without one), and whether credentials for it are stored on
    # this deployment: which ones the server sends there (docs/api.md).
    airflow_url_from: AirflowUrlFrom | None = None
    airflow_credentials_set: bool = False
    airflow_bundle: str
    created_at: UtcTime
    preview_source: str | None
    preview_branch: str | None
    # The guard rails (docs/guard-rails.md); defaults for servers before them.
    max_removal_ratio: float = DEFAULT_MAX_REMOVAL_RATIO
    min_removals: int = DEFAULT_MIN_REMOVALS
    promote_only: bool = False
    promote_from: str | None = None
    current: DeployOut | None
    # The agents that have reported for this deployment, newest report first.
    agents: list[AgentOut] = Field(default_factory=list)


class TokenCreate(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    role: Role
    deployment: NameRef | None = None
    expires_in_seconds: int | None = Field(default=None, strict=True, gt=0, le=MAX_SECONDS)
    description: FreeText = ""


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
    digests: list[Annotated[str, Field(pattern=DIGEST_PATTERN)]] = Field(max_length=100_000)
    # The deploy these blobs are for: when given, a deploy that would be refused (role,
    # binding, DAG deploys disabled, unknown deployment) is refused now, before any upload.
    deployment: NameRef | None = None
    kind: Kind | None = None


class MissingOut(Model):
    missing: list[str]


class BlobBatchRequest(Model):
    # The answer is a blob stream (core/blobstream.py).
    digests: list[Annotated[str, Field(pattern=DIGEST_PATTERN)]] = Field(
        min_length=1, max_length=MAX_DIGESTS
    )


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


class ManifestDeltaIn(Model):
    """A tree's new manifest as the changes from the deployment's current version of that tree
    (docs/api.md, "Manifest deltas"): what a client sends instead of the whole manifest."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    base: str = Field(
        pattern=VERSION_PATTERN,
        description="The version the delta was made against: the deployment's current version "
        "of the tree, else the deploy is refused (409 base_mismatch)",
    )
    version: str = Field(
        pattern=VERSION_PATTERN,
        description="The version of the manifest the delta gives; the server checks it",
    )
    changed: ManifestEntries = Field(
        default_factory=list, description="Entries added, or replacing the base's of their path"
    )
    removed: list[str] = Field(
        default_factory=list, description="Paths of the base that the manifest lacks"
    )


class DeployRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    kind: Kind
    dags_manifest: ManifestEntries | None = None
    project_manifest: ManifestEntries | None = None
    # Instead of a whole manifest: its changes from the deployment's current one.
    dags_delta: ManifestDeltaIn | None = None
    project_delta: ManifestDeltaIn | None = None
    expect_seq: Seq | None = None
    # Clients send cli or ci: the server alone sets promote and rollback, on its own routes.
    # Origin s3 is `dagship s3 sync`'s: accepted only with ``s3_source`` on a DAG-only deploy.
    origin: Literal[Origin.CLI, Origin.CI, Origin.S3] = Origin.CLI
    s3_source: S3Source | None = None
    description: FreeText | None = None
    uploaded_files: Count = 0
    uploaded_bytes: Bytes = 0
    git_sha: FreeText | None = None
    git_branch: FreeText | None = None
    git_author: FreeText | None = None
    git_message: FreeText | None = None
    # True when the project's files differ from git_sha: the deploy is not that commit.
    git_dirty: Flag | None = None
    checks: Checks = Field(default_factory=Checks)
    # Deploy even if it leaves the DAG bundle empty while the current deploy has DAG files.
    allow_empty: bool = False
    # Deploy even if it removes more of the current DAG files than the deployment allows.
    allow_removals: bool = False


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

    to_seq: Seq | None = None
    expect_seq: Seq | None = None
    description: FreeText | None = None


class RollbackOut(Model):
    unchanged: bool
    # The new deploy; the current one when unchanged.
    deploy: DeployOut
    # The earlier deploy whose versions it runs (None from servers before it was added).
    source: DeployOut | None = None


class PromoteRequest(Model):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    source: NameRef = Field(description="The deployment whose deploy is promoted.")
    seq: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_INT32,
        description="The source's deploy; default current.",
    )
    expect_seq: Seq | None = None
    description: FreeText | None = None
    dry_run: Flag = False


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

    source: NameRef
    branch: str = Field(min_length=1, max_length=1000)
    # Admins only: without it the preview takes the server's template or its source's URL.
    airflow_url: AirflowUrl | None = None


class PreviewOut(Model):
    name: str
    source: str
    branch: str
    airflow_url: str | None
    airflow_url_from: AirflowUrlFrom | None = None
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

    idle_seconds: float | None = Field(default=None, strict=True, gt=0, le=MAX_SECONDS)


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


# The most file content a current-version answer carries inline (``?inline=``), whatever is
# asked: a DAG bundle asks for this much.
MAX_INLINE_BYTES = 1024 * 1024


class InlineBlob(Model):
    """A file's content carried in the current-version answer (``?inline=``), so that a DAG
    bundle needs no download for it; the bundle checks it against its digest as any blob."""

    sha256: Annotated[str, Field(pattern=DIGEST_PATTERN)]
    content: Base64Bytes


class DagsCurrentOut(Model):
    deployment: str
    version: str
    deploy_id: str
    seq: int
    files: list[ManifestFile]
    blobs: list[InlineBlob] = Field(
        default_factory=list,
        description="Asked for with ?inline=: the content of the version's blobs that the "
        "If-None-Match version lacks, each whole, as many as fit in that many bytes "
        "(left out when not asked for)",
    )


class ImportErrorOut(Model):
    filename: str
    stack_trace: str
    timestamp: str | None = None


class AirflowFilesOut(Model):
    """The DAG files Airflow must parse at a deploy's version: ``expected`` of them, those not
    parsed yet (``pending``), and which of them are ``importers`` (unchanged files awaited
    because they import a module the deploy added, changed or removed, or name a file of the
    bundle it changed)."""

    expected: int
    parsed: int
    pending: list[str]
    importers: list[str] = Field(default_factory=list)
    # DAG files of the previous DAG version that this one removes, and those of them whose
    # DAGs Airflow still lists (it drops them when it lists the new version's files).
    removed: list[str] = Field(default_factory=list)
    lingering: list[str] = Field(default_factory=list)


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
    # Once done: the DAG ids of the removed files, which Airflow no longer lists.
    removed_dags: list[str] = Field(default_factory=list)
    # Whether the deploy changes the project version; then ``agents`` are the deployment's
    # active agents, which must all run it before the DAG check counts (docs/agent.md).
    project_changed: bool = False
    agents: list[AgentOut] = Field(default_factory=list)
    project_version: str = ""
