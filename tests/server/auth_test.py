"""Tokens over HTTP: 401 for missing/invalid/expired/revoked, 403 naming the role, binding."""

from __future__ import annotations

import time

import pytest

from tests.helpers import Api, Server, assert_error, unique


def test_missing_and_malformed_credentials_are_401(server: Server) -> None:
    anon = server.api("")
    assert_error(anon.get("/deployments"), 401, "token_missing")
    r = anon.get("/deployments", headers={"Authorization": f"Basic {server.admin_token}"})
    assert_error(r, 401, "token_missing")
    r = anon.get("/deployments", headers={"Authorization": "Bearer"})
    assert_error(r, 401, "token_missing")


def test_invalid_token_is_401(server: Server) -> None:
    assert_error(server.api("dsh_not-a-real-token").get("/deployments"), 401, "token_invalid")
    # A real token with one character changed is not accepted either.
    forged = server.admin_token[:-1] + ("A" if server.admin_token[-1] != "A" else "B")
    assert_error(server.api(forged).get("/deployments"), 401, "token_invalid")


def test_expired_token_is_401(api: Api) -> None:
    r = api.post("/tokens", json={"role": "viewer", "expires_in_seconds": 1})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_at"] is not None
    viewer = api.with_token(body["token"])
    assert viewer.get("/deployments").status_code == 200
    time.sleep(2.1)
    err = assert_error(viewer.get("/deployments"), 401, "token_expired")
    assert "expired" in err["detail"].lower() and err["token_id"] == body["id"]


def test_revoked_token_is_401_and_revoke_is_idempotent(api: Api) -> None:
    r = api.post("/tokens", json={"role": "operator", "description": "ci"})
    token, token_id = r.json()["token"], r.json()["id"]
    assert api.with_token(token).get("/deployments").status_code == 200
    first = api.delete(f"/tokens/{token_id}")
    assert first.status_code == 200 and first.json()["revoked_at"]
    again = api.delete(f"/tokens/{token_id}")
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]
    err = assert_error(api.with_token(token).get("/deployments"), 401, "token_revoked")
    assert "revoked" in err["detail"].lower() and err["token_id"] == token_id
    err = assert_error(api.delete("/tokens/tok_doesnotexist"), 404, "token_not_found")
    assert err["token_id"] == "tok_doesnotexist"


def test_token_secret_is_shown_only_at_creation(api: Api) -> None:
    r = api.post("/tokens", json={"role": "viewer"})
    created = r.json()
    assert created["token"].startswith("dsh_")
    assert created["id"].startswith("tok_")
    listed = {t["id"]: t for t in api.get("/tokens", params={"limit": 1000}).json()}
    assert created["id"] in listed
    assert "token" not in listed[created["id"]]
    assert created["token"] not in api.get("/tokens").text
    # Tokens are random: two creations never collide.
    assert api.post("/tokens", json={"role": "viewer"}).json()["token"] != created["token"]


def test_last_used_at_is_recorded(api: Api) -> None:
    created = api.post("/tokens", json={"role": "viewer"}).json()
    api.with_token(created["token"]).get("/deployments")
    listed = {t["id"]: t for t in api.get("/tokens", params={"limit": 1000}).json()}
    assert listed[created["id"]]["last_used_at"] is not None


@pytest.mark.parametrize(
    ("role", "action", "needed"),
    [
        ("viewer", "blobs", "dag-author"),
        ("viewer", "dags", "dag-author"),
        ("dag-author", "project", "operator"),
        ("dag-author", "full", "operator"),
        ("dag-author", "rollback", "operator"),
        ("operator", "create-deployment", "admin"),
        ("operator", "tokens", "admin"),
        ("operator", "list-tokens", "admin"),
    ],
)
def test_role_not_allowed_is_403_naming_the_role(
    api: Api, role: str, action: str, needed: str
) -> None:
    name = unique()
    api.create_deployment(name)
    api.deploy_files(name, {"a.py": b"a"}, "full")
    api.deploy_files(name, {"a.py": b"b"}, "full")
    caller = api.with_token(api.create_token(role))
    r = {
        "blobs": lambda: caller.post("/blobs/missing", json={"digests": []}),
        "dags": lambda: caller.post(
            f"/deployments/{name}/deploys", json={"kind": "dags", "dags_manifest": []}
        ),
        "project": lambda: caller.post(
            f"/deployments/{name}/deploys", json={"kind": "project", "project_manifest": []}
        ),
        "full": lambda: caller.post(
            f"/deployments/{name}/deploys",
            json={"kind": "full", "dags_manifest": [], "project_manifest": []},
        ),
        "rollback": lambda: caller.post(f"/deployments/{name}/rollback", json={}),
        "create-deployment": lambda: caller.post("/deployments", json={"name": unique()}),
        "tokens": lambda: caller.post("/tokens", json={"role": "viewer"}),
        "list-tokens": lambda: caller.get("/tokens"),
    }[action]()
    err = assert_error(r, 403, "role_required")
    assert role in err["detail"] and needed in err["detail"], err["detail"]
    assert (err["role"], err["required_role"]) == (role, needed)
    # The server speaks to every client: the CLI, not the API, names its commands.
    assert "dagship" not in err["detail"], err["detail"]
    assert api.deploy_count(name) == 2


def test_viewer_can_read(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    deploy = api.deploy_files(name, {"a.py": b"viewer reads this"}).json()
    viewer = api.with_token(api.create_token("viewer"))
    assert viewer.get(f"/deployments/{name}").status_code == 200
    assert viewer.get(f"/deployments/{name}/deploys").status_code == 200
    assert viewer.get(f"/deploys/{deploy['id']}").status_code == 200
    assert viewer.get(f"/manifests/{deploy['dags_version']}").status_code == 200
    assert viewer.get(f"/deployments/{name}/dags/current").status_code == 200


def test_bound_token_acts_on_its_deployment_only(api: Api) -> None:
    mine, other = unique("mine"), unique("other")
    api.create_deployment(mine)
    api.create_deployment(other)
    other_deploy = api.deploy_files(other, {"secret.py": b"only for other"}).json()
    blob = api.upload(b"only for other")
    bound = api.with_token(api.create_token("operator", deployment=mine))

    assert [d["name"] for d in bound.get("/deployments").json()] == [mine]
    assert bound.get(f"/deployments/{mine}").status_code == 200
    assert_error(bound.get(f"/deployments/{other}"), 403, "forbidden")
    assert_error(bound.get(f"/deployments/{other}/deploys"), 403, "forbidden")
    assert_error(bound.get(f"/deploys/{other_deploy['id']}"), 403, "forbidden")
    assert bound.get(f"/manifests/{other_deploy['dags_version']}").status_code in (403, 404)
    assert bound.get(f"/blobs/{blob}").status_code in (403, 404)
    r = bound.deploy_files(other, {"x.py": b"bound write"})
    assert_error(r, 403, "forbidden")
    assert api.deploy_count(other) == 1
    ok = bound.deploy_files(mine, {"x.py": b"bound write"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["token_id"] is not None
    assert bound.get(f"/blobs/{blob}").status_code in (403, 404)


def test_bound_admin_manages_tokens_of_its_deployment_only(api: Api) -> None:
    mine, other = unique("mine"), unique("other")
    api.create_deployment(mine)
    api.create_deployment(other)
    admin = api.with_token(api.create_token("admin", deployment=mine))
    assert_error(admin.post("/deployments", json={"name": unique()}), 403, "forbidden")
    assert_error(admin.post("/tokens", json={"role": "viewer", "deployment": other}), 403)
    err = assert_error(admin.post("/tokens", json={"role": "viewer"}), 403, "deployment_required")
    assert err["deployment"] == mine
    r = admin.post("/tokens", json={"role": "dag-author", "deployment": mine})
    assert r.status_code == 201, r.text
    listed = admin.get("/tokens", params={"limit": 1000}).json()
    assert listed and all(t["deployment"] == mine for t in listed)


def test_deleting_a_deployment_revokes_its_bound_tokens(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    token = api.create_token("operator", deployment=name)
    assert api.with_token(token).get(f"/deployments/{name}").status_code == 200
    assert api.delete(f"/deployments/{name}").status_code == 204
    assert_error(api.with_token(token).get("/deployments"), 401, "token_revoked")


def test_every_deploy_records_its_token(api: Api) -> None:
    name = unique()
    api.create_deployment(name)
    r = api.post("/tokens", json={"role": "operator"})
    op = api.with_token(r.json()["token"])
    deploy = op.deploy_files(name, {"t.py": b"token recorded"}).json()
    assert deploy["token_id"] == r.json()["id"]
