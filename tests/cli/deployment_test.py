"""`dagship deployment ...` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.helpers import Api, Cli, unique


def test_create_inspect_list_update_delete(cli: Cli, api: Api) -> None:
    name = unique()
    created = cli("deployment", "create", name, "--description", "Production", "--json").ok().json()
    assert (created["name"], created["description"], created["dag_deploys"]) == (
        name,
        "Production",
        True,
    )
    assert created["current"] is None
    assert api.get(f"/deployments/{name}").json()["description"] == "Production"

    inspected = cli("deployment", "inspect", name, "--json").ok().json()
    assert inspected["name"] == name and inspected["created_at"] == created["created_at"]
    human = cli("deployment", "inspect", name).ok()
    assert name in human.out and "Production" in human.out

    listed = cli("deployment", "list", "--json").ok().json()
    assert isinstance(listed, list)
    names = [d["name"] for d in listed]
    assert name in names and names == sorted(names)
    assert name in cli("deployment", "list").ok().out

    updated = (
        cli("deployment", "update", name, "--description", "Prod v2", "--no-dag-deploys", "--json")
        .ok()
        .json()
    )
    assert (updated["description"], updated["dag_deploys"]) == ("Prod v2", False)
    assert api.get(f"/deployments/{name}").json()["dag_deploys"] is False
    again = cli("deployment", "update", name, "--dag-deploys", "--json").ok().json()
    assert (again["description"], again["dag_deploys"]) == ("Prod v2", True)

    cli("deployment", "delete", name, "--force").ok()
    assert api.get(f"/deployments/{name}").status_code == 404
    cli("deployment", "inspect", name).failed(name, "does not exist")


def test_create_without_dag_deploys(cli: Cli, api: Api) -> None:
    name = unique()
    cli("deployment", "create", name, "--no-dag-deploys").ok()
    assert api.get(f"/deployments/{name}").json()["dag_deploys"] is False


def test_delete_without_force_refuses_and_keeps_it(cli: Cli, api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    api.deploy_files(name, {"a.py": b"kept"})
    result = cli("deployment", "delete", name)
    assert result.code != 0
    assert "--force" in result.err + result.out
    assert api.get(f"/deployments/{name}").status_code == 200
    assert api.deploy_count(name) == 1


def test_create_errors(cli: Cli, api: Api) -> None:
    name = unique()
    cli("deployment", "create", name).ok()
    cli("deployment", "create", name).failed(name, "exists")
    cli("deployment", "create", "Not_Valid").failed("name")
    cli("deployment", "delete", unique("nope"), "--force").failed("does not exist")
    cli("deployment", "update", unique("nope"), "--description", "x").failed("does not exist")


def test_viewer_cannot_create_and_is_told_the_role(cli: Cli, api: Api) -> None:
    viewer = cli.as_token(api.create_token("viewer"))
    viewer("deployment", "create", unique()).failed("viewer", "admin", "dagship token create")
    assert viewer("deployment", "list", "--json").ok().json() is not None


def test_settings_flags_override_environment(cli: Cli, api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    bad = Cli("http://127.0.0.1:9", "dsh_wrong")
    listed = bad("--url", cli.url or "", "--token", cli.token or "", "deployment", "list", "--json")
    if listed.code != 0:  # flags may also come after the command
        listed = bad(
            "deployment", "list", "--url", cli.url or "", "--token", cli.token or "", "--json"
        )
    assert name in [d["name"] for d in listed.ok().json()]


def test_missing_or_wrong_settings_are_clear_errors(cli: Cli) -> None:
    Cli(cli.url, None)("deployment", "list").failed("DAGSHIP_API_TOKEN")
    Cli(cli.url, "dsh_invalid")("deployment", "list").failed("token")
    Cli("http://127.0.0.1:9", cli.token)("deployment", "list").failed("127.0.0.1:9")
