"""`dagship token ...` through the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers import Api, Cli, unique


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_create_list_revoke(cli: Cli, api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    created = (
        cli(
            "token",
            "create",
            "--role",
            "operator",
            "--deployment",
            name,
            "--expires-in",
            "30d",
            "--description",
            "CI for prod",
            "--json",
        )
        .ok()
        .json()
    )
    assert created["token"].startswith("dsh_") and created["id"].startswith("tok_")
    assert (created["role"], created["deployment"], created["description"]) == (
        "operator",
        name,
        "CI for prod",
    )
    expires = parse_time(created["expires_at"])
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs((expires - expected).total_seconds()) < 120

    bound = Cli(cli.url, created["token"])
    assert [d["name"] for d in bound("deployment", "list", "--json").ok().json()] == [name]

    listed = cli("token", "list", "--json").ok().json()
    mine = [t for t in listed if t["id"] == created["id"]]
    assert len(mine) == 1 and "token" not in mine[0]
    assert created["token"] not in cli("token", "list").ok().out
    assert created["id"] in cli("token", "list").ok().out

    revoked = cli("token", "revoke", created["id"], "--json").ok().json()
    assert revoked["id"] == created["id"] and revoked["revoked_at"]
    bound("deployment", "list").failed("revoked")
    cli("token", "revoke", "tok_doesnotexist").failed("does not exist")


def test_create_prints_the_secret_once_for_people(cli: Cli) -> None:
    result = cli("token", "create", "--role", "viewer").ok()
    assert "dsh_" in result.out


def test_no_expiry_by_default(cli: Cli) -> None:
    assert cli("token", "create", "--role", "viewer", "--json").ok().json()["expires_at"] is None


def test_short_expiry_then_401(cli: Cli) -> None:
    import time

    created = cli("token", "create", "--role", "viewer", "--expires-in", "1s", "--json").ok().json()
    time.sleep(2.1)
    Cli(cli.url, created["token"])("deployment", "list").failed("expired")


def test_bad_arguments(cli: Cli) -> None:
    cli("token", "create", "--role", "viewer", "--expires-in", "banana").usage_error(
        "banana", "duration"
    )
    bad_role = cli("token", "create", "--role", "superuser")
    assert bad_role.code != 0 and "superuser" in bad_role.err + bad_role.out
    cli("token", "create", "--role", "viewer", "--deployment", unique("nope")).failed(
        "does not exist"
    )


def test_operator_cannot_manage_tokens(cli: Cli, api: Api) -> None:
    op = cli.as_token(api.create_token("operator"))
    op("token", "create", "--role", "viewer").failed("operator", "admin")
    op("token", "list").failed("admin")
