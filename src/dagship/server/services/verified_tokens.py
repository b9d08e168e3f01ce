"""VerifiedTokens: the tokens this server process verified lately, so a request need not ask
the database who its token is.

Every DAG bundle renews its long poll and downloads each new version's files with its token:
hundreds of requests a minute for one deployment's workers, each of which used to read the
token's row. A token verified against the database is remembered here, by the sha256 of its
secret (as the database stores it), until the first of:

- ``MAX_AGE_SECONDS`` after it was read;
- the token's own expiry;
- any token being revoked: everything is forgotten at once. In this process the routes that
  revoke (token revoke, deployment and preview deletes, preview clean-ups) call
  ``forget_all`` after their commit, so the very next request is refused; other server
  processes forget when their watcher sees the number of revoked tokens change
  (server/events.py): at once on PostgreSQL (the revoking transaction sends ``NOTIFY``), within
  a second on SQLite;
- the watcher failing to read the database: it cannot see revocations then.

Only verified tokens are stored, so unknown secrets cannot grow it.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from dagship.server.db.models import utcnow
from dagship.server.services.access import AuthToken

# A backstop: revocations are seen through the watcher, this bounds what a missed one costs.
MAX_AGE_SECONDS = 60.0
# Past this many entries, a store first drops the ones past their time.
PRUNE_ABOVE = 1024


class VerifiedTokens:
    """Verified tokens by secret hash; safe to use from any thread."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS) -> None:
        self._max_age = max_age
        self._lock = threading.Lock()
        # digest -> (token, monotonic time until which it may be used)
        self._tokens: dict[str, tuple[AuthToken, float]] = {}
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Take it before reading a token from the database and hand it to ``remember``: a
        revocation in between then keeps the read out of the cache."""
        with self._lock:
            return self._epoch

    def get(self, digest: str) -> AuthToken | None:
        with self._lock:
            found = self._tokens.get(digest)
            if found is None:
                return None
            token, until = found
            if time.monotonic() >= until:
                del self._tokens[digest]
                return None
            return token

    def remember(
        self, digest: str, token: AuthToken, expires_at: datetime | None, epoch: int
    ) -> None:
        now = time.monotonic()
        until = now + self._max_age
        if expires_at is not None:
            until = min(until, now + (expires_at - utcnow()).total_seconds())
        with self._lock:
            if epoch != self._epoch or until <= now:
                return
            if len(self._tokens) >= PRUNE_ABOVE:
                self._tokens = {d: t for d, t in self._tokens.items() if t[1] > now}
            self._tokens[digest] = (token, until)

    def forget_all(self) -> None:
        """A token was revoked: verify every token against the database again."""
        with self._lock:
            self._epoch += 1
            self._tokens.clear()
