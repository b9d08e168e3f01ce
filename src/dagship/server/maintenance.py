"""What `dagship server scrub` and `dagship server gc` run: the server's own settings,
database and store, opened from the same environment as `dagship server run`.

Both are safe while the server runs (see services/scrub.py and services/gc.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from dagship.server.app import migrated_database
from dagship.server.db.engine import Database
from dagship.server.services.gc import GcReport, collect
from dagship.server.services.scrub import ScrubReport, scrub
from dagship.server.settings import Settings, SettingsError
from dagship.server.store import open_store
from dagship.server.store.local import LocalBlobStore

T = TypeVar("T")


def scrub_store() -> ScrubReport:
    """Re-hash the store of the server configured in the environment (DAGSHIP_*)."""
    return _with_server(lambda database, store: scrub(database, store))


def collect_garbage(older_than: float, dry_run: bool = False) -> GcReport:
    """Delete the blobs no deploy within `older_than` needs (see services/gc.py)."""
    return _with_server(
        lambda database, store: collect(database, store, older_than, dry_run=dry_run)
    )


def _with_server(work: Callable[[Database, LocalBlobStore], T]) -> T:
    settings = Settings.from_env()
    if not settings.storage_url.startswith("file:"):
        # Checked first: nothing else is opened for a store these commands cannot work on.
        raise SettingsError(
            f"DAGSHIP_STORAGE_URL {settings.storage_url} is not a local store: scrub and gc "
            "work on file:// stores (an S3 store verifies each blob on upload; expire old "
            "objects with the bucket's lifecycle rules, docs/s3.md)"
        )
    try:
        # The database first: a wrong URL must not leave a new store folder behind.
        database = migrated_database(settings)
        try:
            store = open_store(settings.storage_url)
            assert isinstance(store, LocalBlobStore)
            return work(database, store)
        finally:
            database.dispose()
    except SQLAlchemyError as exc:
        url = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = getattr(exc, "orig", None) or exc
        raise SettingsError(f"cannot use the database at {url}: {reason}") from None
