"""Promotion and cross-deployment diffs over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api, Server, assert_error, unique

DAGS = {"etl.py": b"# etl v1\n", "util/common.py": b"# common\n"}
PROJECT = {"requirements.txt": b"pendulum>=3\n", "include/q.sql": b"select 1;\n"}


def deployments(api: Api, **target_fields: Any) -> tuple[str, str]:
    dev, prod = unique("dev"), unique("prod")
    api.create_deployment(dev)
    api.create_deployment(prod, **target_fields)
    return dev, prod


def deploy(api: Api, name: str, tag: str, **fields: Any) -> dict[str, Any]:
    """A full deploy whose files are unique to `name` and `tag`."""
    mark = f"# {name} {tag}\n".encode()
    r = api.deploy_files(
        name,
        {path: data + mark for path, data in DAGS.items()},
        "full",
        project_files={path: data + mark for path, data in PROJECT.items()},
        **fields,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def current(api: Api, name: str) -> dict[str, Any] | None:
    return api.get(f"/deployments/{name}").json()["current"]


def test_promotion_uploads_nothing_and_copies_exact_versions(server: Server, api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, prod, "old")
    source = deploy(
        api, dev, "new", git_sha="c" * 40, git_branch="develop", git_message="fix", git_dirty=True
    )
    blobs_before = server.blob_count()

    r = api.post(f"/deployments/{prod}/promote", json={"source": dev, "description": "release"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["unchanged"], body["dry_run"], body["kind"]) == (False, False, "full")
    assert body["source"]["id"] == source["id"]
    made = body["deploy"]
    assert server.blob_count() == blobs_before
    assert (made["deployment"], made["seq"], made["origin"]) == (prod, 2, "promote")
    assert (made["dags_version"], made["project_version"]) == (
        source["dags_version"],
        source["project_version"],
    )
    assert (made["uploaded_files"], made["uploaded_bytes"]) == (0, 0)
    assert made["source_deploy_id"] == source["id"]
    assert (made["source_deployment"], made["source_seq"]) == (dev, 1)
    assert (made["git_sha"], made["git_branch"], made["git_dirty"]) == ("c" * 40, "develop", True)
    assert made["description"] == "release"
    assert current(api, prod) == made
    # Provenance is in the history and the deploy itself.
    assert api.deploys(prod)[0] == made
    assert api.get(f"/deploys/{made['id']}").json() == made


def test_promote_a_given_seq_and_only_what_differs(api: Api) -> None:
    dev, prod = deployments(api)
    first = deploy(api, dev, "one")
    deploy(api, dev, "two")
    r = api.post(f"/deployments/{prod}/promote", json={"source": dev, "seq": 1})
    assert r.status_code == 201, r.text
    made = r.json()["deploy"]
    assert (made["dags_version"], made["project_version"], made["source_seq"]) == (
        first["dags_version"],
        first["project_version"],
        1,
    )
    second = api.post(f"/deployments/{prod}/promote", json={"source": dev}).json()["deploy"]
    assert second["source_seq"] == 2
    # A DAG-only change on dev promotes as a DAG deploy: the project version stays.
    r = api.deploy_files(dev, {"etl.py": b"# only dags changed " + dev.encode()}, "dags")
    assert r.status_code == 201, r.text
    r = api.post(f"/deployments/{prod}/promote", json={"source": dev, "seq": 3})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "dags"
    assert body["deploy"]["dags_version"] == r.json()["source"]["dags_version"]
    assert body["deploy"]["project_version"] == second["project_version"]
    assert [d["seq"] for d in api.deploys(prod)] == [3, 2, 1]


def test_promoting_the_same_versions_is_a_no_op(api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, dev, "v")
    first = api.post(f"/deployments/{prod}/promote", json={"source": dev})
    assert first.status_code == 201, first.text
    again = api.post(f"/deployments/{prod}/promote", json={"source": dev})
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["unchanged"] is True and body["kind"] is None
    assert body["deploy"] == first.json()["deploy"]
    assert api.deploy_count(prod) == 1


def test_dry_run_changes_nothing(api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, dev, "v")
    old = deploy(api, prod, "old")
    r = api.post(f"/deployments/{prod}/promote", json={"source": dev, "dry_run": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["dry_run"], body["unchanged"], body["kind"]) == (True, False, "full")
    assert body["deploy"] == old
    assert api.deploy_count(prod) == 1


def test_token_not_allowed_on_target_is_refused_and_nothing_changes(api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, dev, "v")
    before = deploy(api, prod, "old")
    bound_to_dev = api.with_token(api.create_token("operator", dev))
    err = assert_error(
        bound_to_dev.post(f"/deployments/{prod}/promote", json={"source": dev}), 403, "forbidden"
    )
    assert f"bound to deployment {dev}" in err["detail"] and prod in err["detail"]
    viewer = api.with_token(api.create_token("viewer"))
    err = assert_error(
        viewer.post(f"/deployments/{prod}/promote", json={"source": dev}), 403, "role_required"
    )
    assert "role viewer" in err["detail"] and "operator" in err["detail"]
    # A DAG author may not promote a project change: that is an operator's deploy.
    author = api.with_token(api.create_token("dag-author"))
    err = assert_error(
        author.post(f"/deployments/{prod}/promote", json={"source": dev}), 403, "role_required"
    )
    assert "full deploys need operator" in err["detail"]
    assert (err["role"], err["required_role"]) == ("dag-author", "operator")
    # A token bound to the target cannot read the source.
    bound_to_prod = api.with_token(api.create_token("operator", prod))
    err = assert_error(
        bound_to_prod.post(f"/deployments/{prod}/promote", json={"source": dev}), 403, "forbidden"
    )
    assert f"bound to deployment {prod}" in err["detail"] and dev in err["detail"]
    assert api.deploys(prod) == [before]


def test_dag_author_may_promote_a_dag_only_change(api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, dev, "v")
    assert api.post(f"/deployments/{prod}/promote", json={"source": dev}).status_code == 201
    r = api.deploy_files(dev, {"etl.py": b"# dags only " + dev.encode()}, "dags")
    assert r.status_code == 201, r.text
    author = api.with_token(api.create_token("dag-author"))
    r = author.post(f"/deployments/{prod}/promote", json={"source": dev})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "dags"


def test_target_without_dag_deploys_takes_promotions_as_full(api: Api) -> None:
    dev, prod = deployments(api, dag_deploys=False)
    deploy(api, dev, "v")
    assert api.post(f"/deployments/{prod}/promote", json={"source": dev}).status_code == 201
    r = api.deploy_files(dev, {"etl.py": b"# dags only " + dev.encode()}, "dags")
    assert r.status_code == 201, r.text
    author = api.with_token(api.create_token("dag-author"))
    err = assert_error(
        author.post(f"/deployments/{prod}/promote", json={"source": dev}), 403, "role_required"
    )
    assert "operator" in err["detail"]
    r = api.post(f"/deployments/{prod}/promote", json={"source": dev})
    assert r.status_code == 201 and r.json()["kind"] == "full", r.text


def test_refusals_name_the_problem_and_change_nothing(api: Api) -> None:
    dev, prod = deployments(api)
    err = assert_error(
        api.post(f"/deployments/{prod}/promote", json={"source": dev}), 404, "no_deploys"
    )
    assert f"deployment {dev} has no deploys yet" in err["detail"] and err["deployment"] == dev
    deploy(api, dev, "v")
    err = assert_error(
        api.post(f"/deployments/{prod}/promote", json={"source": dev, "seq": 9}), 404
    )
    assert "no deploy 9" in err["detail"]
    err = assert_error(
        api.post(f"/deployments/{prod}/promote", json={"source": "no-such-one"}),
        404,
        "deployment_not_found",
    )
    assert "no-such-one" in err["detail"] and err["deployment"] == "no-such-one"
    err = assert_error(
        api.post(f"/deployments/{dev}/promote", json={"source": dev}), 422, "promote_to_itself"
    )
    assert "itself" in err["detail"] and "rollback" in err["detail"]
    assert err["deployment"] == dev
    err = assert_error(
        api.post(f"/deployments/{prod}/promote", json={"source": dev, "expect_seq": 3}),
        409,
        "seq_conflict",
    )
    assert (err["current_seq"], err["deployment"]) == (0, prod)
    assert api.deploy_count(prod) == 0
    r = api.post(f"/deployments/{prod}/promote", json={"source": dev, "expect_seq": 0})
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------ diff across deployments


def test_diff_across_deployments_by_name_seq_and_id(api: Api) -> None:
    dev, prod = deployments(api)
    old = deploy(api, prod, "v")
    r = api.post(f"/deployments/{dev}/promote", json={"source": prod})
    assert r.status_code == 201, r.text
    r = api.deploy_files(dev, {"etl.py": b"# changed", "new.py": b"# new " + dev.encode()}, "dags")
    assert r.status_code == 201, r.text
    new = r.json()

    d = api.get("/diff", params={"from": prod, "to": dev}).json()
    assert (d["from"]["id"], d["to"]["id"]) == (old["id"], new["id"])
    assert d["dags"] == {"added": ["new.py"], "removed": ["util/common.py"], "changed": ["etl.py"]}
    assert d["project"] == {"added": [], "removed": [], "changed": []}
    # dev:1 is the promoted copy of prod: nothing differs.
    same = api.get("/diff", params={"from": prod, "to": f"{dev}:1"}).json()
    assert same["dags"] == same["project"] == {"added": [], "removed": [], "changed": []}
    # Deploy ids still work, and mix with names.
    by_id = api.get("/diff", params={"from": old["id"], "to": dev}).json()
    assert by_id["dags"] == d["dags"]
    assert api.get(f"/deploys/{old['id']}/diff/{new['id']}").json()["dags"] == d["dags"]


def test_diff_refs_errors(api: Api) -> None:
    dev, prod = deployments(api)
    deploy(api, dev, "v")
    err = assert_error(api.get("/diff", params={"from": prod, "to": dev}), 404, "no_deploys")
    assert f"deployment {prod} has no deploys yet" in err["detail"] and err["deployment"] == prod
    err = assert_error(api.get("/diff", params={"from": f"{dev}:x", "to": dev}), 422, "invalid")
    assert "NAME:SEQ" in err["detail"]
    assert_error(api.get("/diff", params={"from": f"{dev}:7", "to": dev}), 404)
    deploy(api, prod, "v")
    bound = api.with_token(api.create_token("viewer", dev))
    err = assert_error(bound.get("/diff", params={"from": prod, "to": dev}), 403, "forbidden")
    assert f"bound to deployment {dev}" in err["detail"]
