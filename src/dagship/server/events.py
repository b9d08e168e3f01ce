"""DeployEvents: wakes requests that wait for a deployment's next deploy.

A DAG bundle asks "tell me when the current DAG version is no longer X" and the server holds
the request open (``GET /deployments/{name}/dags/current?wait=S``). A commit in this process
wakes every waiter at once; a commit made by another server process behind the same database is
seen when the waiters read the database again, at least once a second. Waiters hold no thread
while they wait.

When the server stops, ``stop()`` wakes every waiter and no new wait begins, so a long poll
answers at once (nothing changed: 304) instead of holding the shutdown for up to a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class DeployEvents:
    """A counter of commits in this process that async waiters can wait on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self.count = 0
        self.stopping = False

    def notify(self) -> None:
        """A deploy was committed: wake the waiters (callable from any thread)."""
        with self._lock:
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def stop(self) -> None:
        """The server is stopping: wake the waiters and let none wait again (any thread)."""
        self.stopping = True
        self.notify()

    async def wait(self, seen: int, timeout: float) -> None:
        """Return when a commit happened after ``seen`` (a ``count``), ``timeout`` passed or
        the server is stopping."""
        if self.count != seen or self.stopping:
            return
        changed = self._event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def _event(self) -> asyncio.Event:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            if self._changed is None:
                self._changed = asyncio.Event()
            return self._changed

    def _wake(self) -> None:
        # Runs in the event loop: waiters of this event wake, later ones get a fresh one.
        self.count += 1
        with self._lock:
            changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()
