"""`dagship server`: prepare the home directory and database, then serve."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from dagship.files import write_atomic
from dagship.server.app import create_app, migrated_database
from dagship.server.db.engine import Database
from dagship.server.events import DeployEvents
from dagship.server.secret_box import SecretError
from dagship.server.services import tokens
from dagship.server.settings import Settings, SettingsError
from dagship.server.store import open_store

ADMIN_TOKEN_FILE = "admin-token"
# On SIGTERM, requests in flight get this long to finish before they are cancelled (long polls
# answer at once: see Server).
GRACEFUL_SHUTDOWN_SECONDS = 10


def run_server(host: str | None = None, port: int | None = None) -> int:
    """Serve until interrupted; flags override DAGSHIP_HOST / DAGSHIP_PORT. Returns an exit code."""
    try:
        settings = Settings.from_env().with_address(host, port)
    except SettingsError as exc:
        return _fail(str(exc), 2)
    try:
        # Private: the home holds the admin token and, by default, the database.
        settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        open_store(settings.storage_url, settings.home).cleanup()
        database = prepare_database(settings)
        app = create_app(settings, database)
        app.state.secrets.check()
        sock = listen(settings.host, settings.port)
    except (SettingsError, SecretError) as exc:
        return _fail(str(exc), 2)
    except SQLAlchemyError as exc:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = getattr(exc, "orig", None) or exc
        return _fail(f"cannot use the database at {url}: {reason}", 1)
    except OSError as exc:
        return _fail(f"cannot start: {exc}", 1)

    bound_port = sock.getsockname()[1]
    print(f"dagship server listening on http://{settings.host}:{bound_port}", flush=True)
    config = uvicorn.Config(
        app, log_level="info", workers=1, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS
    )
    Server(config, app.state.events).run(sockets=[sock])
    return 0


class Server(uvicorn.Server):
    """uvicorn's server, which wakes the app's long polls first when it stops.

    uvicorn waits for every open request before it runs the app's lifespan shutdown, so a long
    poll (``GET .../dags/current?wait=``) would hold the shutdown until it timed out: they are
    woken as the shutdown begins, answer, and their connections close.
    """

    def __init__(self, config: uvicorn.Config, events: DeployEvents) -> None:
        super().__init__(config)
        self.events = events

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.events.stop()
        await super().shutdown(sockets)


def prepare_database(settings: Settings) -> Database:
    """Migrate the schema and, on first start, create and show the admin token."""
    database = migrated_database(settings)
    with database.writing() as session:
        created = tokens.ensure_initial_admin(session)
        if created is not None:
            # Written before the commit: if this fails, no token exists that nobody knows.
            path = write_admin_token(settings.home, created.secret)
            print(f"Admin token (shown once, saved to {path}): {created.secret}", flush=True)
    return database


def write_admin_token(home: Path, secret: str) -> Path:
    path = home / ADMIN_TOKEN_FILE
    # Readable by its owner only, and on disk before the token is committed.
    write_atomic(path, secret + "\n", mode=0o600, fsync=True)
    return path


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen before announcing the address, so clients can connect at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every keep-alive response waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _fail(message: str, code: int) -> int:
    print(f"dagship server: error: {message}", file=sys.stderr, flush=True)
    return code
