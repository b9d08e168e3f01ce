"""A small client for Apache Airflow 3's REST API (v2), over httpx.

The dagship server uses it to follow deploys in the Airflow of a deployment (which DAGs were
parsed at which bundle version, import errors, reparse requests); ``dagship quickstart`` to
wait for its local Airflow and read what it parsed. It never imports Airflow, so it works
wherever dagship is installed. Lists are read page by page to the end.

Authentication, in order: a fixed bearer token; a username and password exchanged for a JWT at
``POST /auth/token`` (Airflow 3's simple and FAB auth managers), or, when Airflow refuses them,
the credential-less token of ``GET /auth/token`` (the simple auth manager with
``simple_auth_manager_all_admins``), cached and renewed once on a 401; nothing (an Airflow
whose auth manager lets everyone in, e.g. tests).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from dagship.core.errors import DagshipError

JSON = dict[str, Any]
# Airflow's default [api] maximum_page_limit.
PAGE = 100
HEALTH_PATH = "/api/v2/monitor/health"


class AirflowError(DagshipError):
    """Airflow answered with an error, or could not be reached; ``str()`` says which, with the
    status code but never the body of Airflow's answer: the dagship server passes ``str()`` on
    to its clients, and a URL's answer is not theirs to read. ``remote_detail`` holds the
    start of that body, for a log."""

    def __init__(self, message: str, remote_detail: str = "") -> None:
        super().__init__(message)
        self.remote_detail = remote_detail


class AirflowUnreachableError(AirflowError):
    """No HTTP answer from Airflow at all."""


class AirflowLoginError(AirflowError):
    """Airflow refused the credentials: waiting will not help."""


class AirflowClient:
    """A synchronous client for one Airflow; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._username = username
        self._password = password
        self._fixed_token = token
        self._jwt: str | None = None
        self._lock = threading.Lock()
        try:
            self._http = httpx.Client(
                base_url=self.url,
                timeout=httpx.Timeout(timeout, connect=3.0),
                transport=transport,
            )
        except httpx.InvalidURL as exc:
            raise AirflowUnreachableError(f"{url!r} is not a usable Airflow URL: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- health -----------------------------------------------------------------------------
    def health(self, timeout: float = 2.0) -> JSON | None:
        """Airflow's health document (``{"metadatabase": {"status": "healthy"}, ...}``; no login
        needed), or None while nothing answers with one."""
        try:
            response = self._http.get(HEALTH_PATH, timeout=timeout)
            document = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    # -- DAGs and parsing -----------------------------------------------------------------
    def dags(self, bundle_name: str | None = None, bundle_version: str | None = None) -> list[JSON]:
        """Every non-stale DAG, optionally of one bundle and one bundle version."""
        wanted = _present({"bundle_name": bundle_name, "bundle_version": bundle_version})
        return _matching(self._pages("/api/v2/dags", "dags", wanted), wanted)

    def dag(self, dag_id: str) -> JSON | None:
        """The DAG, stale or not; None when Airflow has no DAG ``dag_id``."""
        path = f"/api/v2/dags/{quote(dag_id, safe='')}"
        response = self._request("GET", path, missing_ok=True)
        if response.status_code == 404:
            return None
        document = _document(response)
        if document is None:
            raise AirflowError(
                f"{self.url} answered GET {path} with HTTP {response.status_code} but not "
                "with a JSON object: is it an Airflow 3 API server?",
                _remote_text(response),
            )
        return document

    def dag_details(self, dag_id: str) -> JSON:
        """The DAG's details, among them ``file_token`` for :meth:`reparse`."""
        return self._json("GET", f"/api/v2/dags/{quote(dag_id, safe='')}/details")

    def import_errors(self, bundle_name: str | None = None) -> list[JSON]:
        """Import errors (``filename`` relative to the bundle, ``stack_trace``, ``timestamp``)."""
        wanted = _present({"bundle_name": bundle_name})
        return _matching(self._pages("/api/v2/importErrors", "import_errors", wanted), wanted)

    def reparse(self, file_token: str) -> None:
        """Put the DAG file behind ``file_token`` at the front of the DAG processor's queue."""
        self._request("PUT", f"/api/v2/parseDagFile/{quote(file_token, safe='')}")

    # -- plumbing ---------------------------------------------------------------------------
    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[JSON]:
        offset = 0
        while True:
            page = self._json("GET", path, params={**params, "limit": PAGE, "offset": offset})
            items, total = (page or {}).get(key) or [], (page or {}).get("total_entries") or 0
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise AirflowError(f"{self.url} answered GET {path} without a list of {key}")
            if not isinstance(total, int):
                raise AirflowError(f"{self.url} answered GET {path} without total_entries")
            yield from items
            offset += len(items)
            if not items or offset >= total:
                return

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if not response.content:
            return None
        document = _document(response)
        if document is None:
            raise AirflowError(
                f"{self.url} answered {method} {path} with HTTP {response.status_code} but not "
                "with a JSON object: is it an Airflow 3 API server?",
                _remote_text(response),
            )
        return document

    def _request(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Airflow's answer; an AirflowError for an HTTP error (but a 404 if ``missing_ok``)."""
        response = self._send(method, path, self._auth_headers(), **kwargs)
        if response.status_code == 401 and self._username and not self._fixed_token:
            # The cached JWT expired: get a new one, once.
            with self._lock:
                self._jwt = None
            response = self._send(method, path, self._auth_headers(), **kwargs)
        if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
            raise AirflowError(_describe(self.url, response), _remote_text(response))
        return response

    def _send(
        self, method: str, path: str, headers: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        try:
            return self._http.request(method, path, headers=headers, **kwargs)
        # A host name httpx cannot encode (IDNA) is an InvalidURL or a UnicodeError, not an
        # HTTPError: the URL is as unreachable either way.
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            raise AirflowUnreachableError(
                f"cannot reach Airflow at {self.url} ({type(exc).__name__}: {exc})"
            ) from exc

    def _auth_headers(self) -> dict[str, str]:
        if self._fixed_token:
            return {"Authorization": f"Bearer {self._fixed_token}"}
        if not self._username:
            return {}
        with self._lock:
            if self._jwt is None:
                self._jwt = self._login()
            return {"Authorization": f"Bearer {self._jwt}"}

    def _login(self) -> str:
        body = {"username": self._username, "password": self._password or ""}
        response = self._send("POST", "/auth/token", {}, json=body)
        if response.status_code >= 400:
            # A password that all-admins mode ignores: its credential-less token, if it is on.
            fallback = self._send("GET", "/auth/token", {})
            if fallback.status_code < 400:
                response = fallback
        if response.status_code >= 400:
            raise AirflowLoginError(
                f"Airflow at {self.url} refused the username and password given for it "
                f"(HTTP {response.status_code} from /auth/token); check the deployment's "
                "Airflow credentials, or DAGSHIP_AIRFLOW_USERNAME and DAGSHIP_AIRFLOW_PASSWORD "
                "on the dagship server",
                _remote_text(response),
            )
        try:
            return str(response.json()["access_token"])
        except (ValueError, KeyError, TypeError):
            raise AirflowLoginError(
                f"{self.url} answered POST /auth/token without an access_token: is it an "
                "Airflow 3 API server?",
                _remote_text(response),
            ) from None


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _matching(items: Iterable[JSON], wanted: dict[str, Any]) -> list[JSON]:
    """The items whose fields have the ``wanted`` values. Airflow filters by them itself where
    it can; older versions ignore filters they do not have (``bundle_name`` and
    ``bundle_version`` of DAGs before 3.1, ``bundle_name`` of import errors before 3.3) and
    answer everything, so the filter is applied here as well."""
    return [item for item in items if all(item.get(k) == v for k, v in wanted.items())]


def _describe(url: str, response: httpx.Response) -> str:
    """What went wrong, without the body of the answer (see AirflowError)."""
    hint = ""
    if response.status_code in (401, 403):
        hint = (
            "; give the dagship server credentials for it: the deployment's (`dagship "
            "deployment update NAME --airflow-token-file FILE`) or DAGSHIP_AIRFLOW_TOKEN"
        )
    return (
        f"Airflow at {url} answered HTTP {response.status_code} to "
        f"{response.request.method} {response.request.url.path}{hint}"
    )


def _remote_text(response: httpx.Response) -> str:
    """The start of the answer's body, for a log only."""
    try:
        return response.text.strip()[:500]
    except (UnicodeError, httpx.HTTPError):
        return ""


def _document(response: httpx.Response) -> JSON | None:
    """The answer's JSON object, or None when it is not one."""
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
