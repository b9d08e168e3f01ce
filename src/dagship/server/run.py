"""`dagship server`: prepare the home directory and database, then serve."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import sys
from pathlib import Path

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from dagship.files import write_atomic
from dagship.server.app import create_app, migrated_database
from dagship.server.connections import ConnectionLimit, read_timeout_protocol
from dagship.server.db.engine import Database
from dagship.server.events import DeployEvents
from dagship.server.secret_box import SecretError
from dagship.server.services import tokens
from dagship.server.settings import Settings, SettingsError
from dagship.server.store import open_store
from dagship.server.store.local import private_dir

ADMIN_TOKEN_FILE = "admin-token"
# On SIGTERM, requests in flight get this long to finish before they are cancelled (long polls
# answer at once: see Server).
GRACEFUL_SHUTDOWN_SECONDS = 10
# An idle keep-alive connection is closed after this long (a reverse proxy's upstream keep-alive
# should be shorter: docs/server.md).
KEEP_ALIVE_SECONDS = 15
# Longest request line and headers; longer ones get a 400 (nginx's large_client_header_buffers
# default is 4 x 8 KB).
MAX_HEADER_BYTES = 16 * 1024
# Files the process needs besides its connections: database pool, blobs, logs.
SPARE_FILES = 256


def run_server(
    host: str | None = None,
    port: int | None = None,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> int:
    """Serve until interrupted; flags override DAGSHIP_HOST / DAGSHIP_PORT. With a
    certificate and key, serve HTTPS. Returns an exit code."""
    try:
        settings = Settings.from_env().with_address(host, port)
        certfile, keyfile = _tls(ssl_certfile, ssl_keyfile)
    except SettingsError as exc:
        return _fail(str(exc), 2)
    try:
        private_files(settings)
        open_store(settings.storage_url, settings.home).cleanup()
        database = prepare_database(settings)
        private_files(settings)
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
    scheme = "https" if certfile else "http"
    print(f"dagship server listening on {scheme}://{settings.host}:{bound_port}", flush=True)
    raise_open_files_limit(settings.max_connections + SPARE_FILES)
    limited = ConnectionLimit(app, settings.max_connections)
    server = Server(uvicorn_config(limited, settings, certfile, keyfile), app.state.events)
    limited.connections = server.server_state.connections
    server.run(sockets=[sock])
    return 0


def uvicorn_config(
    app: ConnectionLimit, settings: Settings, certfile: str | None, keyfile: str | None
) -> uvicorn.Config:
    """uvicorn's settings: limits on slow or idle clients (docs/server.md, "Long polls,
    timeouts and connection limits"), TLS when given; ``app`` limits the connections."""
    return uvicorn.Config(
        app,
        log_level="info",
        workers=1,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # h11, with a read timeout (server/connections.py); its header size limit below.
        http=read_timeout_protocol(settings.client_timeout),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def raise_open_files_limit(wanted: int) -> None:
    """Each connection is an open file: raise the soft limit towards ``wanted`` (up to the hard
    limit), and say so when it stays below."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
        soft = limit
    if soft < wanted:
        print(
            f"dagship server: warning: this process may open only {soft} files, fewer than "
            f"DAGSHIP_MAX_CONNECTIONS + {SPARE_FILES}; raise the limit (ulimit -n, or "
            "LimitNOFILE= in a systemd unit)",
            file=sys.stderr,
            flush=True,
        )


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


def private_files(settings: Settings) -> None:
    """Make what dagship creates readable by its owner only, whatever the umask and
    whatever modes an existing home had: the home holds the admin token and, by default,
    the database (which holds token hashes and every deployment's history).

    Folders become 0700 and the SQLite database (and its -wal and -shm files) 0600; files
    created later get the same through the umask.
    """
    os.umask(0o077)
    private_dir(settings.home)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm", "-journal"):
            path = Path(url.database + suffix)
            if path.exists() and path.stat().st_mode & 0o777 != 0o600:
                path.chmod(0o600)


def _tls(certfile: Path | None, keyfile: Path | None) -> tuple[str | None, str | None]:
    """uvicorn's TLS options; both files or neither."""
    if certfile is None and keyfile is None:
        return None, None
    if certfile is None or keyfile is None:
        raise SettingsError(
            "--ssl-certfile and --ssl-keyfile go together: give the certificate (PEM, with "
            "its chain) and its private key, or neither and put a TLS proxy in front"
        )
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise SettingsError(f"{flag} {path}: no such file")
    try:
        # Loaded once here so that a wrong file is a sentence, not uvicorn's traceback.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise SettingsError(
            f"cannot use --ssl-certfile {certfile} with --ssl-keyfile {keyfile}: {exc}; give a "
            "PEM certificate and the private key that matches it"
        ) from None
    return str(certfile), str(keyfile)


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
