"""The words of dagship's API, as enums: what a deploy carries, who made it, who may do what,
how a check went and where a deploy is in Airflow. Their values are the API's and the CLI's
JSON; being ``StrEnum``s they compare equal to those strings."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a deploy changes: the DAG bundle, the project, or both."""

    DAGS = "dags"
    PROJECT = "project"
    FULL = "full"


class Mode(StrEnum):
    """What a user asks ``dagship deploy`` to deploy; ``auto`` deploys whatever changed."""

    AUTO = "auto"
    DAGS = "dags"
    PROJECT = "project"
    FULL = "full"


class Origin(StrEnum):
    """How a deploy was made."""

    CLI = "cli"
    CI = "ci"
    S3 = "s3"
    ROLLBACK = "rollback"
    PROMOTE = "promote"


class Role(StrEnum):
    """What a token may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"
    DAG_AUTHOR = "dag-author"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether a token with this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


class AirflowUrlFrom(StrEnum):
    """Who chose a deployment's Airflow URL, which decides the credentials the server sends
    there (docs/api.md, "Airflow URLs and credentials").

    ``admin``: an admin set it; ``source``: a preview took its source's; ``template``: a
    preview got it from the server's DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE; ``unconfirmed``: a
    preview's URL given by its creator before only admins could, which the server does not
    contact until an admin sets it again.
    """

    ADMIN = "admin"
    SOURCE = "source"
    TEMPLATE = "template"
    UNCONFIRMED = "unconfirmed"


class CheckOutcome(StrEnum):
    """How one check before a deploy went.

    ``passed``: it ran and passed; ``skipped``: the user chose not to run it (``--no-parse``);
    ``not-run``: it did not apply (a DAG-only deploy without ``--parse``; pytest not asked for).
    """

    PASSED = "passed"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"


class AirflowState(StrEnum):
    """Where a deploy's DAG version is in its deployment's Airflow (docs/api.md)."""

    NO_AIRFLOW = "no_airflow"
    # A deploy that changes the project: no agent has reported in the last minute, or the
    # agents have not all switched to its project version yet (docs/agent.md).
    NO_AGENT = "no_agent"
    APPLYING = "applying"
    WAITING = "waiting"
    PICKED_UP = "picked_up"
    PARSED = "parsed"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def done(self) -> bool:
        """Whether the answer is final: waiting longer would not change it."""
        return self in (
            AirflowState.PARSED,
            AirflowState.FAILED,
            AirflowState.SUPERSEDED,
            AirflowState.NO_AIRFLOW,
            AirflowState.NO_AGENT,
        )


class Component(StrEnum):
    """An Airflow component that ``dagship agent run`` supervises on its host.

    ``standalone`` is one host's whole Airflow (API server, scheduler, DAG processor,
    triggerer and the LocalExecutor), as ``airflow standalone`` runs it.
    """

    STANDALONE = "standalone"
    API_SERVER = "api-server"
    SCHEDULER = "scheduler"
    DAG_PROCESSOR = "dag-processor"
    TRIGGERER = "triggerer"
    CELERY_WORKER = "celery-worker"


class AgentState(StrEnum):
    """Where an agent is with its deployment's current project version (docs/agent.md).

    ``waiting``: it has no project version to run yet (or cannot reach the server before its
    first apply); ``building``: it builds the environment of a new project version while the
    old one keeps running; ``starting``: it restarts its components on the new version;
    ``running``: its components run ``project_version``; ``failed``: the last apply failed
    (``error`` says why) and the host runs the version before it, if any.
    """

    WAITING = "waiting"
    BUILDING = "building"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"


class ErrorCode(StrEnum):
    """The machine ``code`` of an error answer of the API (docs/api.md, "Errors").

    The ``detail`` next to it says what went wrong in API terms; extra fields of the answer
    (named here per code) let a client say what to do next in its own words: the CLI's hints
    (``dagship.cli.hints``) name its commands.
    """

    # Generic, one per HTTP status, for errors without a code of their own.
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    INVALID = "invalid"
    INTERNAL = "internal"
    # 503: the server has DAGSHIP_MAX_CONNECTIONS connections open (``max_connections``).
    SERVER_BUSY = "server_busy"

    # 401: the request's token (``token_id`` for revoked and expired ones).
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_EXPIRED = "token_expired"

    # 403: ``role`` the token has, ``required_role`` the action needs.
    ROLE_REQUIRED = "role_required"
    # 403: a token bound to ``deployment`` must name it to create tokens.
    DEPLOYMENT_REQUIRED = "deployment_required"
    # 403: only an admin token not bound to a deployment chooses an Airflow URL (the server
    # sends Airflow credentials there).
    AIRFLOW_URL_ADMIN_ONLY = "airflow_url_admin_only"
    # 403: ``deployment`` takes promotions only (from ``promote_from``, if set): direct
    # deploys and rollbacks need an admin token.
    PROMOTE_ONLY = "promote_only"

    # 404, with the name looked for: ``deployment``, ``token_id``, ``preview``.
    DEPLOYMENT_NOT_FOUND = "deployment_not_found"
    TOKEN_NOT_FOUND = "token_not_found"
    PREVIEW_NOT_FOUND = "preview_not_found"
    # 404: ``deployment`` has no deploy yet.
    NO_DEPLOYS = "no_deploys"

    # 409
    EXISTS = "exists"
    # ``deployment`` is at ``current_seq``, not the ``expect_seq`` the request based on.
    SEQ_CONFLICT = "seq_conflict"
    # ``deployment`` takes full deploys only.
    DAG_DEPLOYS_DISABLED = "dag_deploys_disabled"
    # A preview's name is taken by ``deployment``, which is not a preview.
    PREVIEW_NAME_TAKEN = "preview_name_taken"
    # ``preview`` exists for another ``branch`` whose name gives the same preview name.
    PREVIEW_OF_OTHER_BRANCH = "preview_of_other_branch"
    # ``preview`` of ``branch`` exists, made from another ``source``.
    PREVIEW_OF_OTHER_SOURCE = "preview_of_other_source"
    # ``deployment`` is not a preview, so it is not deleted as one.
    NOT_A_PREVIEW = "not_a_preview"
    # The deploy would leave ``deployment``'s DAG bundle empty, removing all its
    # ``removed_files`` DAG files (``sample``: some of their paths); ``allow_empty`` deploys it.
    EMPTY_DEPLOY = "empty_deploy"
    # The deploy would remove ``removed_files`` of the ``current_files`` DAG files, more than
    # the deployment's ``max_removal_ratio`` (``sample``: some of their paths);
    # ``allow_removals`` deploys it.
    TOO_MANY_REMOVALS = "too_many_removals"
    # A manifest delta was made against ``base``, but the deployment's current version of that
    # tree is ``current``: nothing was changed; send the whole manifest (or a delta against it).
    BASE_MISMATCH = "base_mismatch"

    # 413: the request's body is over ``max_bytes`` (DAGSHIP_MAX_REQUEST_BYTES).
    REQUEST_TOO_LARGE = "request_too_large"
    # 413: a manifest has more than ``max_files`` entries (DAGSHIP_MAX_MANIFEST_FILES).
    MANIFEST_TOO_LARGE = "manifest_too_large"

    # 400: the body is not JSON.
    MALFORMED_JSON = "malformed_json"

    # 422
    BAD_MANIFEST = "bad_manifest"
    MISSING_BLOBS = "missing_blobs"
    DIGEST_MISMATCH = "digest_mismatch"
    SIZE_MISMATCH = "size_mismatch"
    # ``deployment`` is itself a preview of ``preview_source``.
    SOURCE_IS_PREVIEW = "source_is_preview"
    # Source and target are both ``deployment``.
    PROMOTE_TO_ITSELF = "promote_to_itself"
    # ``after`` names no token (a list's cursor is the last item of the page before).
    BAD_CURSOR = "bad_cursor"
    # The server has no preview idle timeout, so a cleanup must say ``idle_seconds``.
    IDLE_SECONDS_REQUIRED = "idle_seconds_required"
