"""What a CLI user can do about an error of the dagship server, in dagship commands.

The server speaks to every client (the CLI, the DAG bundle, CI, a web UI), so its errors say
what went wrong in the API's terms, with a machine ``code`` and the names involved as extra
fields (docs/api.md). This module turns a code and those fields into the command that helps,
so ``dagship`` prints e.g. "token has role dag-author; project deploys need operator; create one
with `dagship token create --role operator`".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagship.client.errors import ApiError
from dagship.core.vocabulary import AirflowState, ErrorCode

if TYPE_CHECKING:
    from dagship.core.errors import DagshipError
    from dagship.core.schemas import DeployAirflowOut

_NEW_TOKEN = "create a new one with `dagship token create`"

# Each hint names the fields of the error body it needs; a body without them (an older server)
# gets no hint rather than a wrong one.
HINTS: dict[str, str] = {
    ErrorCode.TOKEN_MISSING: "set DAGSHIP_API_TOKEN or pass --token",
    ErrorCode.TOKEN_INVALID: f"check DAGSHIP_API_TOKEN or {_NEW_TOKEN}",
    ErrorCode.TOKEN_REVOKED: _NEW_TOKEN,
    ErrorCode.TOKEN_EXPIRED: _NEW_TOKEN,
    ErrorCode.ROLE_REQUIRED: "create one with `dagship token create --role {required_role}`",
    ErrorCode.DEPLOYMENT_REQUIRED: "pass --deployment {deployment}",
    ErrorCode.AIRFLOW_URL_ADMIN_ONLY: "leave --airflow-url out (a preview then takes the "
    "server's preview URL template or its source's URL), or have an {required_role} token not "
    "bound to a deployment set it with `dagship deployment update NAME --airflow-url URL`",
    ErrorCode.DEPLOYMENT_NOT_FOUND: "list the deployments with `dagship deployment list`",
    ErrorCode.TOKEN_NOT_FOUND: "list tokens with `dagship token list`",
    ErrorCode.PREVIEW_NOT_FOUND: "list them with `dagship preview list`",
    ErrorCode.NO_DEPLOYS: "deploy to it with `dagship deploy -d {deployment}`",
    ErrorCode.SEQ_CONFLICT: "review it with `dagship deploys list {deployment}` and deploy again",
    ErrorCode.DAG_DEPLOYS_DISABLED: "deploy without --dags, or enable them with "
    "`dagship deployment update {deployment} --dag-deploys`",
    ErrorCode.PREVIEW_NAME_TAKEN: "rename the branch, or remove that deployment with "
    "`dagship deployment delete {deployment}`",
    ErrorCode.PREVIEW_OF_OTHER_BRANCH: "delete it with `dagship preview delete --name "
    "'{branch}'` or rename the branch",
    ErrorCode.PREVIEW_OF_OTHER_SOURCE: "delete it with `dagship preview delete --name "
    "'{branch}'` and create it again",
    ErrorCode.NOT_A_PREVIEW: "delete it with `dagship deployment delete {deployment}` if you "
    "mean to",
    ErrorCode.SOURCE_IS_PREVIEW: "create it from one, e.g. --from {preview_source}",
    ErrorCode.PROMOTE_TO_ITSELF: "use `dagship rollback {deployment} --to N`",
    ErrorCode.IDLE_SECONDS_REQUIRED: "e.g. `dagship preview cleanup --idle 7d`",
    ErrorCode.MANIFEST_TOO_LARGE: "leave out what Airflow does not need with .dagshipignore, "
    "or raise DAGSHIP_MAX_MANIFEST_FILES on the server",
    ErrorCode.REQUEST_TOO_LARGE: "leave out what Airflow does not need with .dagshipignore, "
    "or raise DAGSHIP_MAX_REQUEST_BYTES on the server",
}

# The same for a deploy's state in Airflow (``GET /deploys/{id}/airflow``), whose fields are
# those of the answer (``deployment``, ``seq``...).
STATE_HINTS: dict[str, str] = {
    AirflowState.NO_AGENT: "start one on each Airflow host with "
    "`dagship agent run --deployment {deployment}`",
    AirflowState.NO_AIRFLOW: "set one with "
    "`dagship deployment update {deployment} --airflow-url URL`",
    AirflowState.SUPERSEDED: "follow the current one with `dagship deploys list {deployment}` "
    "and `dagship deploys wait ID`",
}


def hint(code: str, fields: Mapping[str, Any]) -> str | None:
    """The CLI's hint for an error ``code`` with the error body's ``fields``, if it has one."""
    return _fill(HINTS.get(code), fields)


def state_hint(state: str, fields: Mapping[str, Any]) -> str | None:
    """The CLI's hint for a deploy in Airflow ``state`` (the answer's fields), if any."""
    return _fill(STATE_HINTS.get(state), fields)


def message(exc: DagshipError) -> str:
    """What ``dagship`` prints for an error: for an answer of the server, its detail, then the
    hint; for any other, its message."""
    if isinstance(exc, ApiError):
        if exc.code == ErrorCode.TOKEN_MISSING and exc.url:
            from dagship.client.settings import where_tokens_come_from

            return _join(exc.detail, where_tokens_come_from(exc.url))
        return _join(exc.detail, hint(exc.code, exc.body))
    return str(exc)


def state_message(status: DeployAirflowOut | Mapping[str, Any]) -> str:
    """What ``dagship`` prints for a deploy's state in Airflow: its detail, then the hint
    (e.g. for ``no_airflow``, how to set the deployment's Airflow URL)."""
    fields = dict(status) if isinstance(status, Mapping) else status.model_dump(mode="json")
    return _join(str(fields.get("detail") or ""), state_hint(str(fields.get("state")), fields))


def _join(detail: str, extra: str | None) -> str:
    return f"{detail}; {extra}" if extra else detail


def _fill(template: str | None, fields: Mapping[str, Any]) -> str | None:
    if template is None:
        return None
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError):
        return None
