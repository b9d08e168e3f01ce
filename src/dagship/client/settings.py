"""Where the server is and which token to use: flags, then environment, then local files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dagship.client.errors import ClientError

DEFAULT_URL = "http://127.0.0.1:8787"
DEFAULT_HOME = "~/.dagship"
ADMIN_TOKEN_FILE = "admin-token"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class EmptyTokenError(ClientError):
    """``--token ""``: an explicitly empty token is a mistake, never a fallback."""


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None


def dagship_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DAGSHIP_HOME") or DEFAULT_HOME).expanduser()


def admin_token_path(env: Mapping[str, str] | None = None) -> Path:
    return dagship_home(env) / ADMIN_TOKEN_FILE


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK_HOSTS


def resolve_settings(
    url: str | None = None, token: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """The server URL and token to use.

    URL: ``url``, else ``DAGSHIP_URL``, else http://127.0.0.1:8787. Token: ``token``, else
    ``DAGSHIP_API_TOKEN``, else, for a server on this machine only, the admin token a local
    server wrote to ``$DAGSHIP_HOME/admin-token`` (so a local quickstart needs no setup; the
    admin token is never sent to another host).
    """
    env = os.environ if env is None else env
    resolved_url = (url or env.get("DAGSHIP_URL") or DEFAULT_URL).rstrip("/")
    if token is not None and not token.strip():
        raise EmptyTokenError(
            "--token is empty: pass a token, or leave --token out to use DAGSHIP_API_TOKEN "
            "or the local admin token"
        )
    if token:
        return Settings(resolved_url, token)
    if env.get("DAGSHIP_API_TOKEN"):
        return Settings(resolved_url, env["DAGSHIP_API_TOKEN"])
    if is_loopback(resolved_url):
        path = admin_token_path(env)
        try:
            local = path.read_text(encoding="utf-8").strip()
        except OSError:
            local = ""
        if local:
            return Settings(resolved_url, local)
    return Settings(resolved_url, None)


def where_tokens_come_from(url: str, env: Mapping[str, str] | None = None) -> str:
    """Where the CLI looked for a token for ``url``, and how to give it one: the message for a
    request that went without one."""
    env = os.environ if env is None else env
    path = admin_token_path(env)
    home = "from DAGSHIP_HOME" if env.get("DAGSHIP_HOME") else "DAGSHIP_HOME is unset"
    if not is_loopback(url):
        tried = f"the admin token file {path} is used only for a server on this machine"
    elif path.exists():
        tried = f"{path} ({home}) is empty"
    else:
        tried = f"{path} ({home}) does not exist"
    return (
        f"no --token, no DAGSHIP_API_TOKEN, and {tried}; set DAGSHIP_API_TOKEN, pass --token, "
        "or set DAGSHIP_HOME to the home of the local server that wrote its admin-token"
    )
