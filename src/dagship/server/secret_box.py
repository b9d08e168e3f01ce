"""Encrypting the secrets the server keeps: deployments' Airflow credentials.

Fernet (``cryptography``): AES-128-CBC with an HMAC-SHA256, so a changed or foreign value is
refused rather than misread. The key is ``DAGSHIP_SECRET_KEY`` (one Fernet key, or several
separated by commas: the first encrypts, every one decrypts, which lets a key be rotated). Without
it, the server uses ``secret.key`` in DAGSHIP_HOME, generated (mode 0600) the first time a secret
is stored. Servers that share a database must share the key: set DAGSHIP_SECRET_KEY on each.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dagship.core.errors import DagshipError

KEY_FILE = "secret.key"


class SecretError(DagshipError):
    """A stored secret that cannot be decrypted with the server's key; ``str()`` says why."""


def check_key(key: str) -> None:
    """Raise ValueError unless ``key`` is a Fernet key (32 bytes, URL-safe base64)."""
    Fernet(key.encode("ascii", errors="strict"))


class SecretBox:
    """Encrypts and decrypts text with the server's key; safe to share between threads."""

    def __init__(self, keys: Sequence[str], home: Path) -> None:
        self._keys = tuple(keys)
        self._key_file = home / KEY_FILE
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise SecretError if the key file exists but holds no key (a server starting with
        it says so at once rather than on the first credentials it stores)."""
        if self._keys or not self._key_file.exists():
            return
        try:
            self._get(create=False)
        except (ValueError, UnicodeError, OSError) as exc:
            raise SecretError(
                f"{self._key_file} does not hold a Fernet key ({exc}); restore it from a backup, "
                "or set DAGSHIP_SECRET_KEY"
            ) from None

    def encrypt(self, text: str) -> str:
        return self._get(create=True).encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            fernet = self._get(create=False)
        except FileNotFoundError:
            raise SecretError(
                f"the server's secret key is gone (DAGSHIP_SECRET_KEY is not set and "
                f"{self._key_file} does not exist)"
            ) from None
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretError(
                "it was encrypted with another key than the server's (DAGSHIP_SECRET_KEY or "
                f"{self._key_file})"
            ) from None

    def _get(self, *, create: bool) -> MultiFernet:
        with self._lock:
            if self._fernet is None:
                keys = self._keys or (self._file_key(create),)
                self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
            return self._fernet

    def _file_key(self, create: bool) -> str:
        """The key of the key file, made first if ``create`` and it does not exist yet."""
        try:
            return self._key_file.read_text().strip()
        except FileNotFoundError:
            if not create:
                raise
        key = Fernet.generate_key()
        self._key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written to a private temporary file, then linked into place: two servers starting
        # on one home end up with the same key, whichever links first.
        fd, tmp = tempfile.mkstemp(dir=self._key_file.parent, prefix=f".{KEY_FILE}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self._key_file)
        finally:
            os.unlink(tmp)
        return self._key_file.read_text().strip()
