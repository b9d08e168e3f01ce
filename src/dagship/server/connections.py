"""Connection limits: past ``max_connections`` requests get a 503, and a client that stops
sending a request halfway is dropped.

uvicorn closes a keep-alive connection that sends nothing after a response, but it waits
forever for the rest of a request (headers sent slowly, or a blob upload that stalls) and for
the first request on a new connection. Thousands of such clients would hold every connection
the server may open. ``ReadTimeoutProtocol`` closes a connection whose client sent nothing for
``client_timeout`` seconds while the server waits for its request; a request that has been
read (a held long poll, a blob download) is never timed out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sized

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from dagship.core.vocabulary import ErrorCode
from dagship.server.api.errors import error_response

# Uvicorn's logger: the one `dagship server` prints at INFO.
log = logging.getLogger("uvicorn.error")
# The client's h11 states in which the server waits for more of its request.
_READING = (h11.IDLE, h11.SEND_BODY)
RETRY_AFTER_SECONDS = 5


class ConnectionLimit:
    """ASGI middleware: while more than ``limit`` connections are open (each held long poll is
    one), a new request gets a 503 with the API's error shape instead of being served.

    ``connections`` is uvicorn's set of open connections (``Server.server_state``), known only
    once the server exists; until then nothing is limited.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.connections: Sized = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(self.connections) > self.limit:
            log.warning(
                "answered 503: %d connections are open, over DAGSHIP_MAX_CONNECTIONS (%d)",
                len(self.connections),
                self.limit,
            )
            response = error_response(
                503,
                f"the server has {len(self.connections)} connections open, over its limit of "
                f"{self.limit} (DAGSHIP_MAX_CONNECTIONS); retry in a few seconds",
                ErrorCode.SERVER_BUSY,
                max_connections=self.limit,
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def read_timeout_protocol(client_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with this read timeout (uvicorn's ``http`` setting)."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"client_timeout": client_timeout})


class ReadTimeoutProtocol(H11Protocol):
    client_timeout = 30.0
    _read_timer: asyncio.TimerHandle | None = None
    _data_seen = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._rearm()

    def data_received(self, data: bytes) -> None:
        self._data_seen = True
        super().data_received(data)
        self._rearm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Until the next request begins, uvicorn's keep-alive timeout applies.
        self._data_seen = False
        self._cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _rearm(self) -> None:
        self._cancel()
        if self.conn.their_state in _READING and not self.transport.is_closing():
            self._read_timer = self.loop.call_later(self.client_timeout, self._timed_out)

    def _cancel(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or self.conn.their_state not in _READING:
            return
        cycle = self.cycle
        waiting_for_app = cycle is not None and cycle.waiting_for_100_continue
        if self.flow.read_paused or waiting_for_app:
            # The server, not the client, is the slow side: reading is paused until the app
            # takes what was sent, or the client waits for "100 Continue".
            self._rearm()
            return
        if self._data_seen:
            client = "{}:{}".format(*self.client) if self.client else "a client"
            log.info(
                "closed the connection of %s: it sent nothing for %g s in the middle of a "
                "request (DAGSHIP_CLIENT_TIMEOUT)",
                client,
                self.client_timeout,
            )
        # A connection that never sent a byte is closed quietly: browsers open spare ones.
        self.transport.close()
