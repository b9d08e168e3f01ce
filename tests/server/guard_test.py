"""Guard rails through the HTTP API, on SQLite and PostgreSQL: deploys that would empty or gut
a DAG bundle are refused unless allowed, and promote-only deployments take promotions only."""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import create_engine, text

from tests.helpers import Api, Server, assert_error, unique


def dag_files(count: int, mark: str) -> dict[str, bytes]:
    return {f"dag_{i:02}.py": f"# dag {i} {mark}\n".encode() for i in range(count)}


def state(api: Api, name: str) -> tuple[int, Any]:
    """The deploy count and the current deploy: what a refusal must leave unchanged."""
    return api.deploy_count(name), api.get(f"/deployments/{name}").json()["current"]


def test_empty_dag_bundle_needs_allow_empty(api: Api) -> None:
    name = api.create_deployment()["name"]
    assert api.deploy_files(name, dag_files(3, name)).status_code == 201
    before = state(api, name)

    body = assert_error(api.deploy_files(name, {}), 409, "empty_deploy")
    assert (body["removed_files"], body["current_files"]) == (3, 3)
    assert body["sample"] == ["dag_00.py", "dag_01.py", "dag_02.py"]
    assert "empty" in body["detail"] and "3 DAG file(s)" in body["detail"]
    assert state(api, name) == before
    # A full deploy with an empty DAG bundle is refused the same way.
    full = api.deploy_files(name, {}, "full", {"requirements.txt": name.encode()})
    assert_error(full, 409, "empty_deploy")
    assert state(api, name) == before

    allowed = api.deploy_files(name, {}, allow_empty=True)
    assert allowed.status_code == 201, allowed.text
    assert (allowed.json()["dags_files"], allowed.json()["dags_removed"]) == (0, 3)
    # Emptying an empty bundle again removes nothing: no question asked.
    assert api.deploy_files(name, {}, "full", {"r.txt": name.encode()}).status_code == 201


def test_removing_most_dag_files_needs_allow_removals(api: Api) -> None:
    name = api.create_deployment()["name"]
    files = dag_files(20, name)
    assert api.deploy_files(name, files).status_code == 201
    before = state(api, name)
    kept = dict(list(files.items())[12:])  # 12 of 20 removed: 60 %

    body = assert_error(api.deploy_files(name, kept), 409, "too_many_removals")
    assert (body["removed_files"], body["current_files"]) == (12, 20)
    assert body["sample"] == [f"dag_{i:02}.py" for i in range(10)]
    assert body["max_removal_ratio"] == 0.5
    assert "12 of the 20 DAG files" in body["detail"]
    assert state(api, name) == before

    allowed = api.deploy_files(name, kept, allow_removals=True)
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["dags_removed"] == 12
    history = api.deploys(name)
    assert [item["dags_removed"] for item in history] == [12, 0]


def test_small_or_allowed_removals_pass(api: Api) -> None:
    name = api.create_deployment()["name"]
    files = dag_files(12, name)
    assert api.deploy_files(name, files).status_code == 201
    # 9 of 12 is more than half, but fewer than the 10 files that make it a question.
    assert api.deploy_files(name, dict(list(files.items())[9:])).status_code == 201

    other = api.create_deployment()["name"]
    assert api.deploy_files(other, files).status_code == 201
    r = api.patch(f"/deployments/{other}", json={"max_removal_ratio": 0.9, "min_removals": 5})
    assert (r.json()["max_removal_ratio"], r.json()["min_removals"]) == (0.9, 5)
    assert api.deploy_files(other, dict(list(files.items())[10:])).status_code == 201  # 83 %


def test_guard_settings_are_validated(api: Api) -> None:
    name = api.create_deployment()["name"]
    before = api.get(f"/deployments/{name}").json()
    for body in ({"max_removal_ratio": 0}, {"max_removal_ratio": 1.5}, {"min_removals": 0}):
        assert_error(api.patch(f"/deployments/{name}", json=body), 422)
    assert_error(
        api.patch(f"/deployments/{name}", json={"promote_only": True, "promote_from": name}),
        422,
        "promote_to_itself",
    )
    missing = {"promote_only": True, "promote_from": unique("nowhere")}
    assert_error(api.patch(f"/deployments/{name}", json=missing), 404, "deployment_not_found")
    assert api.get(f"/deployments/{name}").json() == before
    assert (before["promote_only"], before["promote_from"]) == (False, None)


def protected(api: Api) -> tuple[str, str, str]:
    """staging and prod with a deploy each, prod promote-only from staging; and an operator."""
    staging, prod = api.create_deployment()["name"], api.create_deployment()["name"]
    assert api.deploy_files(staging, dag_files(2, staging)).status_code == 201
    assert api.deploy_files(prod, dag_files(2, prod)).status_code == 201
    assert api.deploy_files(prod, dag_files(3, prod)).status_code == 201
    r = api.patch(f"/deployments/{prod}", json={"promote_only": True, "promote_from": staging})
    assert (r.json()["promote_only"], r.json()["promote_from"]) == (True, staging)
    return staging, prod, api.create_token("operator")


def test_promote_only_refuses_direct_deploys_and_rollbacks(api: Api) -> None:
    staging, prod, operator = protected(api)
    as_operator = api.with_token(operator)
    before = state(api, prod)

    body = assert_error(as_operator.deploy_files(prod, dag_files(4, prod)), 403, "promote_only")
    assert (body["deployment"], body["promote_from"]) == (prod, staging)
    assert f"takes promotions only (from {staging})" in body["detail"]
    # Asked before any upload too, with the deploy's kind.
    early = as_operator.post(
        "/blobs/missing", json={"digests": [], "deployment": prod, "kind": "dags"}
    )
    assert_error(early, 403, "promote_only")
    assert_error(as_operator.post(f"/deployments/{prod}/rollback", json={}), 403, "promote_only")
    assert state(api, prod) == before

    # An admin may still deploy and roll back directly (the way out of an emergency).
    assert api.post(f"/deployments/{prod}/rollback", json={}).status_code == 201


def test_promote_only_takes_promotions_from_its_source_only(api: Api) -> None:
    staging, prod, operator = protected(api)
    as_operator = api.with_token(operator)
    other = api.create_deployment()["name"]
    assert api.deploy_files(other, dag_files(2, other)).status_code == 201
    before = state(api, prod)

    refused = as_operator.post(f"/deployments/{prod}/promote", json={"source": other})
    body = assert_error(refused, 403, "promote_only")
    assert f"from {staging} only, not from {other}" in body["detail"]
    assert state(api, prod) == before

    promoted = as_operator.post(f"/deployments/{prod}/promote", json={"source": staging})
    assert promoted.status_code == 201, promoted.text
    assert promoted.json()["deploy"]["source_deployment"] == staging
    assert promoted.json()["deploy"]["dags_removed"] == 1  # dag_02.py

    # Without a source named, promotions from any deployment are taken; off, all is back.
    api.patch(f"/deployments/{prod}", json={"promote_from": None})
    assert (
        as_operator.post(f"/deployments/{prod}/promote", json={"source": other}).status_code == 201
    )
    off = api.patch(f"/deployments/{prod}", json={"promote_only": False}).json()
    assert (off["promote_only"], off["promote_from"]) == (False, None)
    assert as_operator.deploy_files(prod, dag_files(2, prod)).status_code == 201


def test_migration_counts_removed_files_of_existing_history(api: Api, server: Server) -> None:
    """The upgrade's backfill gives deploys made before the column what the server counts."""
    name = api.create_deployment()["name"]
    files = dag_files(6, name)
    for kept in (files, dict(list(files.items())[2:]), {"new.py": b"x"}, files):
        assert api.deploy_files(name, kept, allow_removals=True).status_code == 201
    counted = [item["dags_removed"] for item in api.deploys(name)]
    # Newest first: back to all 6 (removes new.py), to new.py only, 2 removed, the first.
    assert counted == [1, 4, 2, 0]

    migration = importlib.import_module("dagship.server.db.migrations.versions.0008_guard_rails")
    engine = create_engine(server.database_url or f"sqlite:///{server.home / 'dagship.db'}")
    try:
        with engine.begin() as connection:
            deployment_id = connection.execute(
                text("SELECT id FROM deployments WHERE name = :name"), {"name": name}
            ).scalar_one()
            forget = "UPDATE deploys SET dags_removed = NULL WHERE deployment_id = :id"
            connection.execute(text(forget), {"id": deployment_id})
            connection.execute(text(migration.BACKFILL))
    finally:
        engine.dispose()
    assert [item["dags_removed"] for item in api.deploys(name)] == counted
