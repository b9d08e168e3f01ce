"""One deploy reference syntax everywhere a deploy is named: `NAME`, `NAME:SEQ`, `NAME~N` and
deploy ids, in `deploys inspect/wait/diff`, `rollback --to`, `promote --from` and the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Api, Cli, unique, write

FORMS = ("NAME (its current deploy)", "NAME:SEQ", "NAME~N", "dpl_")


def three_deploys(cli: Cli, api: Api, project: Path) -> tuple[str, list[dict]]:
    """A deployment with deploys #1, #2 and #3 (oldest first)."""
    name = unique("refs")
    api.create_deployment(name)
    made = []
    for i in range(3):
        write(project, "dags/dag_0.py", f"# version {i}\n")
        made.append(cli("deploy", project, "--no-parse", "-d", name, "--json").ok().json())
    return name, made


def test_inspect_names_a_deploy_every_way(cli: Cli, api: Api, project: Path) -> None:
    name, made = three_deploys(cli, api, project)
    ids = [deploy["id"] for deploy in made]
    for ref, expected in [
        (name, ids[2]),
        (f"{name}~0", ids[2]),
        (f"{name}~1", ids[1]),
        (f"{name}~", ids[1]),
        (f"{name}~2", ids[0]),
        (f"{name}:1", ids[0]),
        (ids[1], ids[1]),
    ]:
        assert cli("deploys", "inspect", ref, "--json").ok().json()["id"] == expected, ref
        # The API takes the same references.
        assert api.get(f"/deploys/{ref}").json()["id"] == expected, ref
    shown = cli("deploys", "inspect", f"{name}~1").ok().out
    assert f"#2 {ids[1]}" in shown


def test_unknown_and_malformed_references_say_which_forms_exist(
    cli: Cli, api: Api, project: Path
) -> None:
    name, _ = three_deploys(cli, api, project)
    # A bare number is a deployment name to the server; none exists, and the error says how
    # to name deploy #1 and which forms exist, not just "deployment '1' does not exist".
    diff = cli("deploys", "diff", "1", "2").failed("there is no deployment '1'", "NAME:1", *FORMS)
    assert "does not exist" not in diff.err
    cli("deploys", "inspect", unique("nope")).failed("there is no deployment", *FORMS)
    cli("deploys", "inspect", f"{name}:x").failed("is not a deploy reference", *FORMS)
    cli("deploys", "inspect", "dpl_XYZ").failed("is not a deploy id", *FORMS)
    cli("deploys", "inspect", "dpl_0000000000000000").failed("does not exist")
    cli("deploys", "inspect", f"{name}:9").failed(f"deployment {name} has no deploy 9")
    cli("deploys", "inspect", f"{name}~3").failed(
        f"{name}~3 names no deploy", "at deploy #3", f"{name}~2 is its first"
    )
    cli("deploys", "wait", f"{name}~7").failed(f"{name}~7 names no deploy")
    assert api.get(f"/deploys/{name}:x").status_code == 422
    assert api.get("/deploys/1").status_code == 404


def test_diff_and_wait_take_references(cli: Cli, api: Api, project: Path) -> None:
    name, made = three_deploys(cli, api, project)
    out = cli("deploys", "diff", f"{name}~2", name).ok().out
    assert out.startswith(f"From {name} deploy #1 ({made[0]['id']}) to {name} deploy #3")
    assert "~ dag_0.py" in out
    # No Airflow and no agent: the wait ends at once, on the deploy the reference names.
    waited = cli("deploys", "wait", f"{name}~1", "--timeout", "5", "--json")
    assert waited.code == 1
    assert waited.json()["deploy_id"] == made[1]["id"]


def test_rollback_to_takes_a_seq_or_a_reference(cli: Cli, api: Api, project: Path) -> None:
    name, made = three_deploys(cli, api, project)
    back = cli("rollback", name, "--to", f"{name}~2", "--json").ok().json()
    assert (back["seq"], back["source"]["id"]) == (4, made[0]["id"])
    assert back["dags_version"] == made[0]["dags_version"]
    again = cli("rollback", name, "--to", made[2]["id"], "--json").ok().json()
    assert (again["seq"], again["dags_version"]) == (5, made[2]["dags_version"])
    bare = cli("rollback", name, "--to", "2", "--json").ok().json()
    assert bare["source"]["id"] == made[1]["id"]

    other = unique("other")
    api.create_deployment(other)
    cli("deploy", project, "--no-parse", "-d", other).ok()
    cli("rollback", name, "--to", other).failed(
        f"{other} is deploy #1 of {other}, not of {name}", f"dagship promote --from {other}"
    )
    cli("rollback", name, "--to", f"{name}:x").failed("is not a deploy reference")
    assert api.deploy_count(name) == 6


@pytest.mark.parametrize("form", ["tilde", "seq", "id"])
def test_promote_from_takes_any_reference(cli: Cli, api: Api, project: Path, form: str) -> None:
    dev, made = three_deploys(cli, api, project)
    prod = unique("prod")
    api.create_deployment(prod)
    ref = {"tilde": f"{dev}~2", "seq": f"{dev}:1", "id": made[0]["id"]}[form]
    body = cli("promote", "--from", ref, "--to", prod, "--json").ok().json()
    assert (body["source_deployment"], body["source_seq"]) == (dev, 1)
    assert body["dags_version"] == made[0]["dags_version"]
    out = cli("promote", "--from", ref, "--to", prod).ok().out
    assert out.startswith(f"Deployment {prod} (deploy #1) already runs the versions of {dev} ")


def test_promote_seq_goes_with_a_name_only(cli: Cli, api: Api, project: Path) -> None:
    dev, made = three_deploys(cli, api, project)
    prod = unique("prod")
    api.create_deployment(prod)
    cli("promote", "--from", f"{dev}~1", "--to", prod, "--seq", "1").failed(
        "already names one deploy", "--from NAME --seq N"
    )
    body = cli("promote", "--from", dev, "--to", prod, "--seq", "2", "--json").ok().json()
    assert body["source"]["id"] == made[1]["id"]
    assert api.deploy_count(prod) == 1
