"""ApiClient: one method per route of the dagship HTTP API (docs/api.md)."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from dagship import __version__
from dagship.client.errors import (
    ApiError,
    BadAnswerError,
    BlobBatchError,
    ClientError,
    ServerUnreachableError,
)
from dagship.core import blobstream
from dagship.core.schemas import (
    AgentOut,
    AgentReport,
    AirflowCredentials,
    BlobOut,
    CleanupOut,
    CleanupRequest,
    DagsCurrentOut,
    DeployAirflowOut,
    DeploymentCreate,
    DeploymentOut,
    DeploymentUpdate,
    DeployOut,
    DeployRequest,
    DiffOut,
    InfoOut,
    ManifestOut,
    MissingOut,
    MissingRequest,
    PreviewCreate,
    PreviewCreated,
    PreviewDeleted,
    PreviewOut,
    ProjectCurrentOut,
    PromoteOut,
    PromoteRequest,
    RollbackOut,
    RollbackRequest,
    TokenCreate,
    TokenCreated,
    TokenOut,
)
from dagship.core.vocabulary import Kind, Role

T = TypeVar("T")
MAX_DIGESTS_PER_REQUEST = 100_000
# Items per request when a list is read to its end (the server's most).
PAGE_SIZE = 1000
# Blobs up to this size are sent from memory; bigger ones are streamed from the file.
STREAM_THRESHOLD = 1024 * 1024
_CHUNK = 256 * 1024
# Connection errors are retried only for requests that are safe to repeat.
_RETRY_DELAYS = (0.2, 0.5)
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})

ProgressCallback = Callable[[int], None]


class FileChangedError(ClientError):
    """A file's size changed between the scan and its upload."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


class ApiClient:
    """A synchronous client for one server; safe to share between threads."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"dagship/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            verify=_tls_context(self.url),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- server ---------------------------------------------------------------------------
    def info(self) -> InfoOut:
        return self._call(InfoOut, "GET", "/api/v1/info")

    # -- deployments ----------------------------------------------------------------------
    def create_deployment(
        self,
        name: str,
        description: str | None = None,
        dag_deploys: bool | None = None,
        airflow_url: str | None = None,
        airflow_bundle: str | None = None,
        airflow_credentials: AirflowCredentials | None = None,
    ) -> DeploymentOut:
        body = _body(
            DeploymentCreate,
            name=name,
            description=description,
            dag_deploys=dag_deploys,
            airflow_url=airflow_url,
            airflow_bundle=airflow_bundle,
        )
        if airflow_credentials is not None:
            body["airflow_credentials"] = airflow_credentials.model_dump(exclude_none=True)
        return self._call(DeploymentOut, "POST", "/api/v1/deployments", json=body)

    def list_deployments(self, page_size: int = PAGE_SIZE) -> list[DeploymentOut]:
        """Every deployment the token may see, by name (read ``page_size`` at a time)."""
        return self._all(DeploymentOut, "/api/v1/deployments", page_size)

    def get_deployment(self, name: str) -> DeploymentOut:
        return self._call(DeploymentOut, "GET", f"/api/v1/deployments/{name}")

    def update_deployment(
        self,
        name: str,
        description: str | None = None,
        dag_deploys: bool | None = None,
        airflow_url: str | None = None,
        airflow_bundle: str | None = None,
        airflow_credentials: AirflowCredentials | Literal[""] | None = None,
        guard: Mapping[str, object] | None = None,
    ) -> DeploymentOut:
        """Change the given fields; ``airflow_url``/``airflow_bundle``/``airflow_credentials``
        "" clear them. ``guard``: the guard rails to set (``max_removal_ratio``,
        ``min_removals``, ``promote_only``, ``promote_from``; None clears ``promote_from``)."""
        body = _body(
            DeploymentUpdate,
            description=description,
            dag_deploys=dag_deploys,
            airflow_url=airflow_url,
            airflow_bundle=airflow_bundle,
        )
        if airflow_credentials == "":
            body["airflow_credentials"] = None
        elif airflow_credentials is not None:
            body["airflow_credentials"] = airflow_credentials.model_dump(exclude_none=True)
        body.update(guard or {})
        return self._call(DeploymentOut, "PATCH", f"/api/v1/deployments/{name}", json=body)

    def delete_deployment(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/deployments/{name}")

    # -- tokens ---------------------------------------------------------------------------
    def create_token(
        self,
        role: Role,
        deployment: str | None = None,
        expires_in_seconds: int | None = None,
        description: str | None = None,
    ) -> TokenCreated:
        body = _body(
            TokenCreate,
            role=role,
            deployment=deployment,
            expires_in_seconds=expires_in_seconds,
            description=description,
        )
        return self._call(TokenCreated, "POST", "/api/v1/tokens", json=body)

    def list_tokens(self, page_size: int = PAGE_SIZE) -> list[TokenOut]:
        """Every token the token may see, oldest first (read ``page_size`` at a time)."""
        return self._all(TokenOut, "/api/v1/tokens", page_size)

    def revoke_token(self, token_id: str) -> TokenOut:
        return self._call(TokenOut, "DELETE", f"/api/v1/tokens/{token_id}")

    # -- blobs and manifests --------------------------------------------------------------
    def missing_blobs(
        self, digests: list[str], deployment: str | None = None, kind: Kind | None = None
    ) -> list[str]:
        """The digests among ``digests`` that the server does not store, in order.

        With ``deployment`` and ``kind`` the server first checks that such a deploy would be
        allowed, so a refused deploy fails before anything is uploaded.
        """
        missing: list[str] = []
        intent = {"deployment": deployment, "kind": kind} if deployment else {}
        # At least one request, even for no digests, so the deploy check above happens.
        for start in range(0, max(len(digests), 1), MAX_DIGESTS_PER_REQUEST):
            chunk = digests[start : start + MAX_DIGESTS_PER_REQUEST]
            body = _body(MissingRequest, digests=chunk, **intent)
            # Asking is read-only on the server, so it is safe to retry.
            answer = self._call(
                MissingOut, "POST", "/api/v1/blobs/missing", json=body, idempotent=True
            )
            missing.extend(answer.missing)
        return missing

    def put_blob(
        self,
        digest: str,
        path: str | os.PathLike[str],
        size: int,
        on_progress: ProgressCallback | None = None,
    ) -> BlobOut:
        """Upload the file at ``path`` as blob ``digest`` (``size`` bytes, from the scan).

        Raises FileChangedError when the file no longer has ``size`` bytes.
        """
        file = Path(path)
        streamed = size > STREAM_THRESHOLD

        def content() -> bytes | Iterator[bytes]:
            if streamed:
                return _read_chunks(file, size, on_progress)
            data = file.read_bytes()
            if len(data) != size:
                raise FileChangedError(file)
            return data

        result = self._call(
            BlobOut,
            "PUT",
            f"/api/v1/blobs/{digest}",
            content=content,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if on_progress is not None and not streamed:
            on_progress(size)
        return result

    def get_blob(self, digest: str) -> Iterator[bytes]:
        """The blob's bytes in chunks, streamed: a large blob is never held whole in memory.

        Errors (404, unreachable) are raised here, before the first chunk; the caller
        verifies the bytes against ``digest``.
        """
        return _stream(self._send_stream("GET", f"/api/v1/blobs/{digest}"))

    def get_blobs(
        self, digests: Iterable[str], sizes: Mapping[str, int] | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Each of ``digests`` (repeats dropped) as ``(digest, content)``, verified, in batches
        of ``blobstream.MAX_DIGESTS`` (``POST /blobs/batch``); each blob is held whole, so
        stream large ones with ``get_blob``. ``sizes`` (digest -> size) are checked too.

        An unknown blob is an ApiError 404 whose ``body["missing"]`` lists them, raised before
        any blob of its batch; a cut or wrong stream is a BlobBatchError.
        """
        wanted = list(dict.fromkeys(digests))
        for start in range(0, len(wanted), blobstream.MAX_DIGESTS):
            chunk = wanted[start : start + blobstream.MAX_DIGESTS]
            expected = {d: (sizes or {}).get(d, -1) for d in chunk}
            response = self._send_stream("POST", "/api/v1/blobs/batch", json={"digests": chunk})
            received = 0  # blobs come in the order asked
            try:
                for blob in blobstream.read_blobs(response.iter_bytes(_CHUNK), expected):
                    received += 1
                    yield blob
            except (httpx.TransportError, httpx.DecodingError) as exc:
                problem = f"the connection broke after {received} of {len(chunk)} blobs"
                raise BlobBatchError(
                    str(response.request.url), f"{problem} ({_reason(exc)})", chunk[received]
                ) from exc
            except blobstream.BlobStreamError as exc:
                raise BlobBatchError(str(response.request.url), str(exc), exc.digest) from exc
            finally:
                response.close()

    def get_manifest(self, version: str) -> ManifestOut:
        return self._call(ManifestOut, "GET", f"/api/v1/manifests/{version}")

    # -- deploys --------------------------------------------------------------------------
    def create_deploy(self, deployment: str, request: DeployRequest) -> DeployOut:
        body = request.model_dump(mode="json", exclude_none=True)
        # Sent only when asked for, so servers before the guard rails take the deploy.
        for flag in ("allow_empty", "allow_removals"):
            if not body.get(flag):
                body.pop(flag, None)
        return self._call(DeployOut, "POST", f"/api/v1/deployments/{deployment}/deploys", json=body)

    def list_deploys(self, deployment: str, limit: int = 20) -> list[DeployOut]:
        path = f"/api/v1/deployments/{deployment}/deploys"
        return self._call(list[DeployOut], "GET", path, params={"limit": limit})

    def get_deploy(self, ref: str) -> DeployOut:
        """The deploy a reference names: a deploy id, ``prod``, ``prod:5`` or ``prod~1``."""
        return self._call(DeployOut, "GET", f"/api/v1/deploys/{quote(ref, safe=':~')}")

    def deploy_airflow(self, deploy_id: str) -> DeployAirflowOut:
        """What the deployment's Airflow made of the deploy (``GET /deploys/{id}/airflow``)."""
        return self._call(DeployAirflowOut, "GET", f"/api/v1/deploys/{deploy_id}/airflow")

    def diff_deploys(self, from_id: str, to_id: str) -> DiffOut:
        return self._call(DiffOut, "GET", f"/api/v1/deploys/{from_id}/diff/{to_id}")

    def diff_refs(self, old: str, new: str) -> DiffOut:
        """Diff of two deploy references: ``dev``, ``dev:5``, ``dev~1`` or a deploy id."""
        return self._call(DiffOut, "GET", "/api/v1/diff", params={"from": old, "to": new})

    def promote(
        self,
        target: str,
        source: str,
        seq: int | None = None,
        expect_seq: int | None = None,
        description: str | None = None,
        dry_run: bool = False,
    ) -> PromoteOut:
        body = _body(
            PromoteRequest,
            source=source,
            seq=seq,
            expect_seq=expect_seq,
            description=description,
            dry_run=dry_run,
        )
        return self._call(PromoteOut, "POST", f"/api/v1/deployments/{target}/promote", json=body)

    # -- previews -------------------------------------------------------------------------
    def list_previews(self, page_size: int = PAGE_SIZE) -> list[PreviewOut]:
        """Every preview the token may see, by name (read ``page_size`` at a time)."""
        return self._all(PreviewOut, "/api/v1/previews", page_size)

    def create_preview(
        self, source: str, branch: str, airflow_url: str | None = None
    ) -> PreviewCreated:
        body = _body(PreviewCreate, source=source, branch=branch, airflow_url=airflow_url)
        return self._call(PreviewCreated, "POST", "/api/v1/previews", json=body)

    def delete_preview(self, name: str) -> PreviewDeleted:
        return self._call(PreviewDeleted, "DELETE", f"/api/v1/previews/{name}")

    def cleanup_previews(self, idle_seconds: float | None = None) -> CleanupOut:
        body = _body(CleanupRequest, idle_seconds=idle_seconds)
        return self._call(CleanupOut, "POST", "/api/v1/previews/cleanup", json=body)

    def rollback(
        self,
        deployment: str,
        to_seq: int | None = None,
        expect_seq: int | None = None,
        description: str | None = None,
    ) -> RollbackOut:
        body = _body(RollbackRequest, to_seq=to_seq, expect_seq=expect_seq, description=description)
        path = f"/api/v1/deployments/{deployment}/rollback"
        return self._call(RollbackOut, "POST", path, json=body)

    def current_dags(
        self, deployment: str, etag: str | None = None, wait: float = 0.0, inline: int = 0
    ) -> DagsCurrentOut | None:
        """The deployment's current DAG bundle, or None if it still has version ``etag``
        (after waiting up to ``wait`` seconds for a new one). With ``inline``, the answer's
        ``blobs`` carry the new version's blobs that ``etag`` lacks, as many as fit in that
        many bytes (an older server sends none); the caller checks them against their digests."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else None
        params: dict[str, Any] = {}
        if etag and wait > 0:
            params["wait"] = wait
        if etag and inline > 0:
            params["inline"] = inline
        response = self._request(
            "GET",
            f"/api/v1/deployments/{deployment}/dags/current",
            headers=headers,
            params=params or None,
        )
        # Airflow's DAG processor asks this in its loop: an unchanged version is a 304, with
        # nothing to parse or validate.
        if response.status_code == 304:
            return None
        return _parse(DagsCurrentOut, response)

    def current_project(
        self, deployment: str, etag: str | None = None, wait: float = 0.0
    ) -> ProjectCurrentOut | None:
        """The deployment's current project version, or None if it still is ``etag`` (after
        waiting up to ``wait`` seconds for a new one): what ``dagship agent`` follows."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else None
        params = {"wait": wait} if etag and wait > 0 else None
        response = self._request(
            "GET",
            f"/api/v1/deployments/{deployment}/project/current",
            headers=headers,
            params=params,
        )
        if response.status_code == 304:
            return None
        return _parse(ProjectCurrentOut, response)

    def report_agent(self, deployment: str, agent_id: str, report: AgentReport) -> AgentOut:
        """Record what the agent ``agent_id`` of ``deployment`` is doing (a viewer token bound
        to the deployment may do this and nothing more)."""
        path = f"/api/v1/deployments/{deployment}/agents/{agent_id}"
        return self._call(AgentOut, "PUT", path, json=report.model_dump(mode="json"))

    def list_agents(self, deployment: str) -> list[AgentOut]:
        """The agents that have reported for ``deployment``, newest report first."""
        return self._call(list[AgentOut], "GET", f"/api/v1/deployments/{deployment}/agents")

    # -- plumbing -------------------------------------------------------------------------
    def _send_stream(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """A read-only request whose answer is streamed: errors (an error status, no server)
        are raised before its body is read; the caller closes the response."""
        request = self._http.build_request(method, path, json=json)
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=True)
                break
            except httpx.TransportError as exc:
                if attempt >= len(_RETRY_DELAYS):
                    raise ServerUnreachableError(self.url, _reason(exc)) from exc
                time.sleep(_RETRY_DELAYS[attempt])
                attempt += 1
        if response.status_code >= 400:
            response.read()
            response.close()
            raise _api_error(response)
        return response

    def _all(self, item: type[T], path: str, page_size: int) -> list[T]:
        """Every item of a paged list: page after page while the server links a next one
        (docs/api.md, "Lists")."""
        found: list[T] = []
        params: dict[str, Any] = {"limit": page_size}
        while True:
            response = self._request("GET", path, params=params)
            found.extend(_parse(list[item], response))  # type: ignore[valid-type]
            following = response.links.get("next", {}).get("url")
            if not following:
                return found
            params = dict(httpx.URL(following).params)

    def _call(self, answer: type[T], method: str, path: str, **kwargs: Any) -> T:
        """Send a request and read the answer as ``answer`` (a core model, or a list of them)."""
        return _parse(answer, self._request(method, path, **kwargs))

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Callable[[], bytes | Iterator[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        retry_all = method in _IDEMPOTENT if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    content=content() if content is not None else None,
                    headers=headers,
                )
                break
            except httpx.TransportError as exc:
                # A refused connection never reached the server, so any request may repeat.
                retryable = retry_all or isinstance(exc, httpx.ConnectError)
                if not retryable or attempt >= len(_RETRY_DELAYS):
                    raise ServerUnreachableError(self.url, _reason(exc)) from exc
                time.sleep(_RETRY_DELAYS[attempt])
                attempt += 1
        if response.status_code >= 400:
            raise _api_error(response)
        return response


def _body(request: type[BaseModel], **fields: Any) -> dict[str, Any]:
    """The JSON body of a ``request`` with the fields that were given: None means "leave it to
    the server". Not validated here: the server checks every body and says what is wrong."""
    unknown = fields.keys() - request.model_fields.keys()
    if unknown:
        raise TypeError(f"{request.__name__} has no field {', '.join(sorted(unknown))}")
    given = {name: value for name, value in fields.items() if value is not None}
    return request.model_construct(**given).model_dump(mode="json", exclude_unset=True)


# One validator per answer type, built on first use (a model's own, or one for a list).
_adapters: dict[object, TypeAdapter[Any]] = {}


def _parse(answer: type[T], response: httpx.Response) -> T:
    """The body of ``response`` as ``answer``; BadAnswerError when it is not one."""
    adapter: TypeAdapter[T] = _adapters.get(answer) or _adapters.setdefault(
        answer, TypeAdapter(answer)
    )
    try:
        return adapter.validate_python(response.json())
    except ValueError as exc:  # not JSON, or not the document the contract promises
        raise BadAnswerError(
            response.status_code, str(response.request.url), _problems(exc)
        ) from exc


def _problems(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:3]
    ]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _read_chunks(path: Path, size: int, on_progress: ProgressCallback | None) -> Iterator[bytes]:
    sent = 0
    with path.open("rb") as f:
        while sent < size:
            chunk = f.read(min(_CHUNK, size - sent))
            if not chunk:
                raise FileChangedError(path)
            sent += len(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
            yield chunk
        if f.read(1):
            raise FileChangedError(path)


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _stream(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(_CHUNK)
    except httpx.TransportError as exc:
        raise ServerUnreachableError(str(response.request.url), _reason(exc)) from exc
    finally:
        response.close()


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if not isinstance(detail, str):
            detail = str(detail)
        error = ApiError(response.status_code, str(body.get("code") or "error"), detail, body)
        error.url = str(response.request.url)
        return error
    text = response.text.strip().replace("\n", " ")[:200]
    return ApiError(
        response.status_code,
        "error",
        f"the server at {response.request.url} answered HTTP {response.status_code}"
        + (f": {text}" if text else "")
        + "; check DAGSHIP_URL points at a dagship server",
    )


def _tls_context(url: str) -> ssl.SSLContext | bool:
    """Certificate checks for https URLs; for plain http, a context that trusts no one.

    Loading the CA bundle costs a tenth of a second on every command, and a plain-http client
    never needs it: a redirect to https then fails verification instead of going unchecked.
    """
    if url.lower().startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
