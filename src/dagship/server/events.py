"""DeployEvents: wakes requests that wait for a deployment's next deploy.

A DAG bundle asks "tell me when the current DAG version is no longer X" and the server holds
the request open (``GET /deployments/{name}/dags/current?wait=S``; agents do the same on
``.../project/current``). A waiting request holds no thread and reads nothing: it waits on its
deployment's *generation*, a counter that one watcher per server process bumps when it sees
that deployment's current deploy change. The watcher reads every deployment's state in one small
query (``db/changes.py``):

- at once when this process commits a deploy (``notify``);
- at once when another server process on the same PostgreSQL database commits one
  (``LISTEN dagship_deploys``), and every ``LISTEN_POLL_SECONDS`` in case a notification was
  lost while the listening connection reconnected;
- every ``POLL_SECONDS`` on SQLite, where other processes cannot notify.

So a thousand idle waiters cost what one does, and the waiters one change woke share one
read (``shared``). A renewed wait (the same version asked again) reads nothing either: the
last version read at the deployment's generation is kept (``remember``/``recall``), and it is
right for as long as the generation stands, since any change bumps it and wakes the waiter.

The same read counts revoked tokens: when the count changes, the tokens this process verified
are forgotten (services/verified_tokens.py), so a revocation made through another process
bites here at once on PostgreSQL and within ``POLL_SECONDS`` on SQLite.

When the server stops, ``stop()`` wakes every waiter and no new wait begins, so a long poll
answers at once (nothing changed: 304) instead of holding the shutdown for up to a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from dagship.server.db.changes import (
    CHANNEL,
    DeploymentStates,
    deployment_states,
    revoked_tokens,
)
from dagship.server.db.engine import Database
from dagship.server.services.verified_tokens import VerifiedTokens

# Uvicorn's logger: the one `dagship server` prints at INFO.
log = logging.getLogger("uvicorn.error")
T = TypeVar("T")

POLL_SECONDS = 1.0
LISTEN_POLL_SECONDS = 15.0
RECONNECT_SECONDS = 2.0


# What the watcher reads: every deployment's state, and how many tokens were ever revoked.
States = tuple[DeploymentStates, int]


class DeployEvents:
    """Per deployment, a generation counter that async waiters wait on."""

    def __init__(self, database: Database, verified: VerifiedTokens) -> None:
        self._database = database
        self._verified = verified
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._check: asyncio.Event | None = None
        self._generations: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._reads: dict[Hashable, asyncio.Future[Any]] = {}
        # deployment -> {key: (generation, value)}: what was last read at that generation.
        self._known: dict[str, dict[Hashable, tuple[int, Any]]] = {}
        self.waiting = 0
        # How many times the watcher read the deployments' states (server stats).
        self.checks = 0
        self.stopping = False

    def generation(self, name: str) -> int:
        return self._generations.get(name, 0)

    def notify(self) -> None:
        """A deploy was committed in this process: look for changes now (any thread)."""
        with self._lock:
            loop, check = self._loop, self._check
        if loop is not None and check is not None and not loop.is_closed():
            loop.call_soon_threadsafe(check.set)

    def stop(self) -> None:
        """The server is stopping: wake the waiters and let none wait again (any thread)."""
        self.stopping = True
        with self._lock:
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._release_all)

    async def wait(self, name: str, seen: int, timeout: float) -> None:
        """Return when ``name`` changed after generation ``seen``, ``timeout`` passed or the
        server is stopping."""
        if self.generation(name) != seen or self.stopping:
            return
        changed = self._changed.get(name)
        if changed is None:
            changed = self._changed[name] = asyncio.Event()
        self.waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await changed.wait()
        finally:
            self.waiting -= 1

    async def shared(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """``read()``'s result, shared by every caller with ``key`` while it runs: the waiters
        one change woke (a thousand DAG processors of one deployment) read the database once.
        A caller that comes after the read ended reads again."""
        running = self._reads.get(key)
        if running is None:
            running = self._reads[key] = asyncio.ensure_future(read())
            running.add_done_callback(lambda _done: self._reads.pop(key, None))
        # Shielded: one caller going away (its client disconnected) does not cancel the read
        # the others wait for.
        return await asyncio.shield(running)

    def remember(self, name: str, key: Hashable, seen: int, value: Any) -> None:
        """Keep ``value``, read from the database after generation ``seen`` of ``name`` began,
        for ``recall`` while that generation stands (event loop only)."""
        if self.generation(name) == seen:
            self._known.setdefault(name, {})[key] = (seen, value)

    def recall(self, name: str, key: Hashable, seen: int) -> Any:
        """What ``remember`` kept under ``key`` at generation ``seen``, or None. It may be
        newer than the generation (read before the watcher saw a change), never older."""
        kept = self._known.get(name, {}).get(key)
        return kept[1] if kept is not None and kept[0] == seen else None

    async def watch(self) -> None:
        """The watcher: runs until cancelled (started by the app's lifespan)."""
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._check = check = asyncio.Event()
        listener = None
        interval = POLL_SECONDS
        if self._database.engine.dialect.name == "postgresql":
            listener = asyncio.create_task(self._listen(check))
            interval = LISTEN_POLL_SECONDS
        try:
            known = await self._read_states()
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await check.wait()
                check.clear()
                known = await self._check_changes(known)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _check_changes(self, known: States | None) -> States | None:
        states = await self._read_states()
        if states is None:
            return known
        if known is None:
            # What changed since the last good read is unknown: every waiter reads once, and
            # every token is verified again.
            self._verified.forget_all()
            self._wake_all()
            return states
        (before, revoked_before), (now, revoked) = known, states
        if revoked != revoked_before:
            self._verified.forget_all()
        for name in before.keys() | now.keys():
            if before.get(name) != now.get(name):
                self._bump(name)
        return states

    async def _read_states(self) -> States | None:
        self.checks += 1
        try:
            # In a thread: the database calls are blocking and requests must keep flowing.
            return await asyncio.to_thread(self._states)
        except SQLAlchemyError as exc:
            # Waiters keep waiting (their timeouts still answer); the next check retries.
            # Changes cannot be seen meanwhile: renewed polls and tokens read the database.
            self._known.clear()
            self._verified.forget_all()
            log.warning("cannot read the deployments to wake long polls: %s", exc)
            return None

    def _states(self) -> States:
        with self._database.read_session() as session:
            return deployment_states(session), revoked_tokens(session)

    async def _listen(self, check: asyncio.Event) -> None:
        """Set ``check`` whenever a server process commits a deploy (PostgreSQL)."""
        import psycopg

        url = self._database.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Anything committed while no connection listened is found by this check.
                    check.set()
                    async for _notification in conn.notifies():
                        check.set()
            except psycopg.Error as exc:
                log.warning(
                    "lost the database connection that listens for deploys (%s); "
                    "reconnecting in %g s",
                    exc,
                    RECONNECT_SECONDS,
                )
            await asyncio.sleep(RECONNECT_SECONDS)

    def _bump(self, name: str) -> None:
        # Runs in the event loop: this deployment's waiters wake, later ones get a fresh event.
        self._generations[name] = self.generation(name) + 1
        self._known.pop(name, None)
        changed = self._changed.pop(name, None)
        if changed is not None:
            changed.set()

    def _wake_all(self) -> None:
        for name in list(self._changed):
            self._bump(name)

    def _release_all(self) -> None:
        # Stopping: the waiters return without a change, so they answer without reading.
        changed, self._changed = self._changed, {}
        for event in changed.values():
            event.set()
