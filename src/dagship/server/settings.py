"""Server settings, read once from the environment.

Every problem is reported as a SettingsError with a sentence a user can act on, so
`dagship server` can print it instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dagship.core.durations import parse_duration
from dagship.core.errors import DagshipError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_MAX_BLOB_SIZE = 256 * 1024 * 1024
DEFAULT_PREVIEW_IDLE_TIMEOUT = 7 * 24 * 3600.0
DEFAULT_PREVIEW_SWEEP_INTERVAL = 600.0
_OFF = {"0", "off", "never", "none"}
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
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Credentials for the REST API of deployments' Airflows; never stored or returned.
    airflow: AirflowAuth = AirflowAuth()
    # Preview deployments with no deploy for this long are deleted (None: never), checked
    # every preview_sweep_interval seconds.
    preview_idle_timeout: float | None = DEFAULT_PREVIEW_IDLE_TIMEOUT
    preview_sweep_interval: float = DEFAULT_PREVIEW_SWEEP_INTERVAL

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
            host=env.get("DAGSHIP_HOST") or DEFAULT_HOST,
            port=_port(env.get("DAGSHIP_PORT"), "DAGSHIP_PORT"),
            airflow=AirflowAuth(
                username=env.get("DAGSHIP_AIRFLOW_USERNAME") or None,
                password=env.get("DAGSHIP_AIRFLOW_PASSWORD") or None,
                token=env.get("DAGSHIP_AIRFLOW_TOKEN") or None,
            ),
            preview_idle_timeout=_idle_timeout(env.get("DAGSHIP_PREVIEW_IDLE_TIMEOUT")),
            preview_sweep_interval=_duration(
                env.get("DAGSHIP_PREVIEW_SWEEP_INTERVAL"),
                "DAGSHIP_PREVIEW_SWEEP_INTERVAL",
                DEFAULT_PREVIEW_SWEEP_INTERVAL,
            ),
        )
        settings.check()
        return settings

    def with_address(self, host: str | None, port: int | None) -> Settings:
        """These settings with command-line flags applied over the environment."""
        return Settings(
            home=self.home,
            database_url=self.database_url,
            storage_url=self.storage_url,
            max_blob_size=self.max_blob_size,
            host=host or self.host,
            port=self.port if port is None else _port(str(port), "--port"),
            airflow=self.airflow,
            preview_idle_timeout=self.preview_idle_timeout,
            preview_sweep_interval=self.preview_sweep_interval,
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


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number of bytes, got {raw!r}") from None
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
