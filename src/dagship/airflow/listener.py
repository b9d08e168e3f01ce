"""DeployListener: hears of a deployment's new DAG version the moment it is deployed.

Airflow's DAG processor calls a bundle's ``refresh()`` from its loop (every loop with
``refresh_interval`` 0). Instead of asking the dagship server each time, the bundle keeps one
request open to it from a daemon thread, a long poll: "answer when the current DAG version is
no longer X" (``GET /deployments/{name}/dags/current?wait=S``). ``refresh()`` then knows without
a network call whether there is anything new, and takes the new version's file list that the
listener already holds. While the listener is not connected, the bundle asks the server itself.

The listener also hands each new version to the bundle (``on_news``) on its own thread, so the
work a new version needs (downloading, building the tree, asking Airflow to parse the changed
files first) is done before the DAG processor's next loop, and ``refresh()`` only switches.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagship.core.schemas import DagsCurrentOut

log = logging.getLogger("dagship.airflow.listener")

# How long the server holds each request open (it answers at once when a deploy lands). Each
# renewal costs the server a request: long, but under the server's 60 s limit and under the 60 s
# idle timeout that proxies (nginx, AWS ALB) have by default (docs/server.md).
LISTEN_SECONDS = 50.0
# Pauses after consecutive failures (server down, token refused): back off, up to the last.
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)

Fetch = Callable[[str | None, float], "DagsCurrentOut | None"]
OnNews = Callable[["DagsCurrentOut"], None]


class DeployListener:
    """A daemon thread long-polling the server for the current DAG version.

    ``fetch(etag, wait)`` returns the current-version document, or None if the version is still
    ``etag`` after ``wait`` seconds; it raises when the server cannot answer. ``on_news(body)``,
    if given, is called on the listener's thread with each new document, after ``news()``
    returns it; what it raises is logged, and the listener listens on.
    """

    def __init__(self, fetch: Fetch, name: str, on_news: OnNews | None = None) -> None:
        self._fetch = fetch
        self._on_news = on_news
        self._name = name
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: str | None = None
        self._latest: DagsCurrentOut | None = None
        self._connected = False

    def start(self, known: str | None) -> None:
        """Listen for versions other than ``known`` (the bundle's); no-op if listening."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._known = known
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"dagship-listener-{self._name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def connected(self) -> bool:
        """True while the last request to the server succeeded."""
        with self._lock:
            return self._connected

    def news(self, version: str | None) -> DagsCurrentOut | None:
        """The newest current-version document heard, if its version is not ``version``."""
        with self._lock:
            latest = self._latest
        if latest is None or latest.version == version:
            return None
        return latest

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                etag = self._latest.version if self._latest else self._known
                # The first answer comes at once, so the bundle soon knows the line is up.
                wait = LISTEN_SECONDS if self._connected else 0.0
            try:
                body = self._fetch(etag, wait)
            except Exception as exc:  # the thread must outlive any server trouble
                with self._lock:
                    self._connected = False
                pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.debug(
                    "DAG bundle %s: listening failed (%s); again in %gs", self._name, exc, pause
                )
                self._stop.wait(pause)
                continue
            failures = 0
            with self._lock:
                self._connected = True
                if body is not None:
                    self._latest = body
            if body is not None and self._on_news is not None:
                try:
                    self._on_news(body)
                except Exception:  # refresh() then does the work, and reports what fails
                    log.debug(
                        "DAG bundle %s: preparing version %s failed; the next refresh does it",
                        self._name,
                        body.version,
                        exc_info=True,
                    )
