"""`dagship s3 watch`: the S3 sync as a long-running process, for S3-compatible stores
without Lambda (MinIO, on-premises): sync, wait, sync again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagship.client.api import ApiClient
from dagship.client.errors import ClientError
from dagship.integrations.s3.bucket import S3SyncError, connect
from dagship.integrations.s3.sync import SyncResult, sync_prefix

# Called after each round with its result, or with the error that stopped that round.
OnRound = Callable[[SyncResult | Exception], None]


def watch(
    client: ApiClient,
    url: str,
    deployment: str,
    interval: float,
    on_round: OnRound,
    *,
    stop: threading.Event | None = None,
    s3: Any = None,
    cache_file: Path | None = None,
) -> None:
    """Sync every ``interval`` seconds until ``stop`` is set. A round that fails (a bad key,
    S3 or the server unreachable) deploys nothing, is reported, and the next round tries
    again; an unchanged prefix reads only the listing."""
    stop = stop or threading.Event()
    s3 = connect() if s3 is None else s3
    while not stop.is_set():
        try:
            result: SyncResult | Exception = sync_prefix(
                client, url, deployment, s3=s3, cache_file=cache_file
            )
        except (S3SyncError, ClientError) as exc:
            result = exc
        on_round(result)
        stop.wait(interval)
