"""Tokens verified lately are answered without the database, and a revocation made through
any server process is seen by the others."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dagship.core.vocabulary import Role
from dagship.server.db.models import utcnow
from dagship.server.services.access import AuthToken
from dagship.server.services.verified_tokens import VerifiedTokens
from tests.conftest import ServerFactory
from tests.helpers import Api, assert_error

TOKEN = AuthToken(id="tok_1", role=Role.VIEWER, deployment_id=None, deployment=None)


def test_a_remembered_token_is_known_until_all_are_forgotten() -> None:
    verified = VerifiedTokens()
    verified.remember("digest", TOKEN, None, verified.epoch)
    assert verified.get("digest") == TOKEN
    assert verified.get("other") is None
    verified.forget_all()
    assert verified.get("digest") is None


def test_a_token_read_before_a_revocation_is_not_remembered_after_it() -> None:
    verified = VerifiedTokens()
    epoch = verified.epoch  # a request starts reading the token from the database
    verified.forget_all()  # meanwhile a token is revoked
    verified.remember("digest", TOKEN, None, epoch)
    assert verified.get("digest") is None


def test_a_token_is_remembered_no_longer_than_it_is_valid() -> None:
    verified = VerifiedTokens()
    verified.remember("expired", TOKEN, utcnow() - timedelta(seconds=1), verified.epoch)
    verified.remember("soon", TOKEN, utcnow() + timedelta(seconds=0.2), verified.epoch)
    assert verified.get("expired") is None
    assert verified.get("soon") == TOKEN
    time.sleep(0.3)
    assert verified.get("soon") is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_token_revoked_through_another_server_process_is_refused_there(
    make_server: ServerFactory, backend: str
) -> None:
    first = make_server(backend)
    second = first.replica()
    try:
        second.start()
        created = first.api().post("/tokens", json={"role": "viewer"}).json()
        user = Api(first.url, created["token"])
        assert user.get("/deployments").status_code == 200  # now verified in the first process
        revoked = Api(second.url, first.admin_token).delete(f"/tokens/{created['id']}")
        assert revoked.status_code == 200, revoked.text
        # PostgreSQL's NOTIFY reaches the first process at once, SQLite's watcher reads the
        # revocations every second: well before the 60 s a verified token is kept at most.
        deadline = time.monotonic() + 10
        while (r := user.get("/deployments")).status_code == 200:
            assert time.monotonic() < deadline, "the revoked token is still accepted"
            time.sleep(0.1)
        assert_error(r, 401, "token_revoked")
    finally:
        second.stop()
