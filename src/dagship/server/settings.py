"""Server settings, read once from the environment.

Every problem is reported as a SettingsError with a sentence a user can act on, so
`dagship server` can print it instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dagship.core.durations import parse_duration
from dagship.core.errors import DagshipError
from dagship.core.schemas import check_airflow_url

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_MAX_BLOB_SIZE = 256 * 1024 * 1024
# A request body other than a blob: a deploy of 100,000 files with long paths fits.
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_MANIFEST_FILES = 100_000
DEFAULT_PREVIEW_IDLE_TIMEOUT = 7 * 24 * 3600.0
DEFAULT_PREVIEW_SWEEP_INTERVAL = 600.0
DEFAULT_CLIENT_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 4096
_OFF = {"0", "off", "never", "none"}
# What DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE may say: the preview's name and its source's (both
# lowercase letters, digits and dashes). Not the branch: whoever creates the preview chooses
# it, and a dot or slash in it could move the URL to another host.
TEMPLATE_FIELDS = ("name", "source")
SUPPORTED_DATABASES = ("sqlite", "postgresql")
SUPPORTED_STORAGE_SCHEMES = ("file", "s3")


class SettingsError(DagshipError, ValueError):
    """A setting that cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class AirflowAuth:
    """How the server authenticates to Airflow's REST API: a bearer token, or a username and
    password exchanged for a JWT, or nothing."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_manifest_files: int = DEFAULT_MAX_MANIFEST_FILES
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Credentials for the REST API of deployments' Airflows whose URL an admin chose, unless
    # the deployment has its own; never stored or returned.
    airflow: AirflowAuth = AirflowAuth()
    # Fernet keys for secrets stored in the database (server/secret_box.py); none: the
    # home's secret.key.
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    # The Airflow URL of new previews, with {name} and {source}; None: the source's URL.
    preview_airflow_url_template: str | None = None
    # Preview deployments with no deploy for this long are deleted (None: never), checked
    # every preview_sweep_interval seconds.
    preview_idle_timeout: float | None = DEFAULT_PREVIEW_IDLE_TIMEOUT
    preview_sweep_interval: float = DEFAULT_PREVIEW_SWEEP_INTERVAL
    # A client that sends nothing for this long in the middle of a request is dropped.
    client_timeout: float = DEFAULT_CLIENT_TIMEOUT
    # Open connections (each held long poll is one) beyond which requests get a 503.
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("DAGSHIP_HOME") or "~/.dagship").expanduser().absolute()
        database_url = env.get("DAGSHIP_DATABASE_URL") or f"sqlite:///{home / 'dagship.db'}"
        storage_url = env.get("DAGSHIP_STORAGE_URL") or (home / "blobs").as_uri()
        settings = cls(
            home=home,
            database_url=database_url,
            storage_url=storage_url,
            max_blob_size=_positive_int(env, "DAGSHIP_MAX_BLOB_SIZE", DEFAULT_MAX_BLOB_SIZE),
            max_request_bytes=_positive_int(
                env, "DAGSHIP_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES
            ),
            max_manifest_files=_positive_int(
                env, "DAGSHIP_MAX_MANIFEST_FILES", DEFAULT_MAX_MANIFEST_FILES, "a number of files"
            ),
            host=env.get("DAGSHIP_HOST") or DEFAULT_HOST,
            port=_port(env.get("DAGSHIP_PORT"), "DAGSHIP_PORT"),
            airflow=AirflowAuth(
                username=env.get("DAGSHIP_AIRFLOW_USERNAME") or None,
                password=env.get("DAGSHIP_AIRFLOW_PASSWORD") or None,
                token=env.get("DAGSHIP_AIRFLOW_TOKEN") or None,
            ),
            secret_keys=_secret_keys(env.get("DAGSHIP_SECRET_KEY")),
            preview_airflow_url_template=_url_template(
                env.get("DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE")
            ),
            preview_idle_timeout=_idle_timeout(env.get("DAGSHIP_PREVIEW_IDLE_TIMEOUT")),
            preview_sweep_interval=_duration(
                env.get("DAGSHIP_PREVIEW_SWEEP_INTERVAL"),
                "DAGSHIP_PREVIEW_SWEEP_INTERVAL",
                DEFAULT_PREVIEW_SWEEP_INTERVAL,
            ),
            client_timeout=_duration(
                env.get("DAGSHIP_CLIENT_TIMEOUT"), "DAGSHIP_CLIENT_TIMEOUT", DEFAULT_CLIENT_TIMEOUT
            ),
            max_connections=_positive_int(
                env, "DAGSHIP_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, "a number of connections"
            ),
        )
        settings.check()
        return settings

    def with_address(self, host: str | None, port: int | None) -> Settings:
        """These settings with command-line flags applied over the environment."""
        return dataclasses.replace(
            self,
            host=host or self.host,
            port=self.port if port is None else _port(str(port), "--port"),
        )

    def check(self) -> None:
        check_database_url(self.database_url)
        check_storage_url(self.storage_url)


def check_database_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise SettingsError(
            f"DAGSHIP_DATABASE_URL is not a database URL: {url!r}; use "
            "sqlite:////path/to/dagship.db or postgresql+psycopg://user@host/db"
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DATABASES:
        raise SettingsError(
            f"DAGSHIP_DATABASE_URL uses unsupported database {backend!r}; "
            "use sqlite:///... or postgresql+psycopg://..."
        )
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
        if dialect.is_async:
            raise ImportError("dagship uses synchronous drivers")
    except (ImportError, ArgumentError, AttributeError):
        raise SettingsError(
            f"DAGSHIP_DATABASE_URL needs database driver {parsed.drivername!r}, which is not "
            "installed; use postgresql+psycopg://... (psycopg 3 comes with dagship)"
        ) from None
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise SettingsError(
            "DAGSHIP_DATABASE_URL must name a SQLite file (sqlite:////path/to/dagship.db); "
            "an in-memory database would lose every deploy on restart"
        )


def check_storage_url(url: str) -> None:
    scheme = urlparse(url).scheme
    if scheme not in SUPPORTED_STORAGE_SCHEMES:
        raise SettingsError(
            f"DAGSHIP_STORAGE_URL scheme {scheme + '://' if scheme else url!r} is not supported; "
            "use file:///path/to/blobs or s3://bucket/prefix"
        )


def _positive_int(
    env: Mapping[str, str], name: str, default: int, what: str = "a number of bytes"
) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _port(raw: str | None, name: str) -> int:
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{name} must be between 0 and 65535, got {port}")
    return port


def _idle_timeout(raw: str | None) -> float | None:
    if raw and raw.strip().lower() in _OFF:
        return None
    return _duration(raw, "DAGSHIP_PREVIEW_IDLE_TIMEOUT", DEFAULT_PREVIEW_IDLE_TIMEOUT)


def _duration(raw: str | None, name: str, default: float) -> float:
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _secret_keys(raw: str | None) -> tuple[str, ...]:
    from dagship.server.secret_box import check_key

    keys = tuple(key.strip() for key in (raw or "").split(",") if key.strip())
    for number, key in enumerate(keys, 1):
        try:
            check_key(key)
        except ValueError:
            raise SettingsError(
                f"DAGSHIP_SECRET_KEY: key {number} is not a Fernet key (32 bytes in URL-safe "
                'base64); make one with `python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            ) from None
    return keys


def preview_airflow_url(template: str, name: str, source: str) -> str:
    """The Airflow URL the template gives the preview ``name`` of deployment ``source``."""
    return template.format(name=name, source=source)


def _url_template(raw: str | None) -> str | None:
    if not raw or not raw.strip():
        return None
    template = raw.strip()
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        unknown = fields - set(TEMPLATE_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}")
        check_airflow_url(preview_airflow_url(template, "preview-x", "prod"))
    except (ValueError, IndexError) as exc:
        raise SettingsError(
            f"DAGSHIP_PREVIEW_AIRFLOW_URL_TEMPLATE {template!r}: {exc}; write an http(s) URL "
            "with {name} (the preview's name) or {source} (its source deployment), e.g. "
            "http://airflow-{name}.previews.example.com:8080"
        ) from None
    return template.rstrip("/")
