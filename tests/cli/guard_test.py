"""Guard rails through the real CLI against the real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.helpers import Api, Cli, Server, make_project, unique, write


def deployed(cli: Cli, api: Api, project: Path) -> str:
    name = str(api.create_deployment(unique())["name"])
    cli("deploy", project, "-d", name, "--no-parse").ok()
    return name


def current(api: Api, name: str) -> tuple[int, str]:
    body = api.get(f"/deployments/{name}").json()
    return api.deploy_count(name), body["current"]["id"]


def test_empty_dags_folder_is_refused_unless_allowed(cli: Cli, api: Api, project: Path) -> None:
    name = deployed(cli, api, project)
    before = current(api, name)
    for path in (project / "dags").iterdir():
        path.unlink()

    refused = cli("deploy", project, "-d", name, "--no-parse")
    refused.failed("leaves deployment", "empty", "3 DAG file(s)", "--allow-empty")
    assert "dag_0.py" in refused.err  # the sample of what would go
    assert current(api, name) == before

    as_json = cli("deploy", project, "-d", name, "--no-parse", "--json")
    assert as_json.code == 1
    document = as_json.json()
    assert (document["code"], document["removed_files"], document["deployed"]) == (
        "empty_deploy",
        3,
        False,
    )
    assert document["sample"] == ["dag_0.py", "dag_1.py", "dag_2.py"]
    assert current(api, name) == before

    allowed = cli("deploy", project, "-d", name, "--no-parse", "--allow-empty", "--json")
    assert allowed.ok().json()["dags_files"] == 0
    assert allowed.json()["dags_removed"] == 3


def test_missing_dags_folder_is_an_error_before_any_upload(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    name = deployed(cli, api, project)
    before, blobs = current(api, name), server.blob_count()
    shutil.rmtree(project / "dags")
    write(project, "include/new.py", f"# {name}\n")
    cli("deploy", project, "-d", name, "--no-parse").failed(
        f"no dags/ folder in {project}", "is the root folder right?"
    )
    assert (current(api, name), server.blob_count()) == (before, blobs)
    # Deploying the project alone does not need one.
    cli("deploy", project, "-d", name, "--no-parse", "--project").ok()


def test_removing_most_dags_needs_allow_removals(cli: Cli, api: Api, tmp_path: Path) -> None:
    project = make_project(tmp_path / "big", dags=20)
    name = deployed(cli, api, project)
    before = current(api, name)
    for i in range(12):  # 60 %
        (project / f"dags/dag_{i}.py").unlink()

    refused = cli("deploy", project, "-d", name, "--no-parse", "--json")
    assert refused.code == 1
    document = refused.json()
    assert (document["code"], document["removed_files"], len(document["sample"])) == (
        "too_many_removals",
        12,
        10,
    )
    assert "--allow-removals" in refused.err
    assert current(api, name) == before

    cli("deploy", project, "-d", name, "--no-parse", "--allow-removals").ok()
    listed = cli("deploys", "list", name).ok().out
    assert re.search(r"REMOVED", listed), listed
    assert [d["dags_removed"] for d in cli("deploys", "list", name, "--json").ok().json()] == [
        12,
        0,
    ]
    shown = cli("deploys", "inspect", name).ok().out
    assert re.search(r"Removed +12 DAG file\(s\)", shown), shown


def test_deployment_update_sets_and_shows_guard_rails(cli: Cli, api: Api) -> None:
    staging, prod = unique("staging"), unique("prod")
    api.create_deployment(staging)
    api.create_deployment(prod)
    shown = cli("deployment", "inspect", prod).ok().out
    assert re.search(r"Promote only +no", shown), shown
    assert "more than 50% of the DAG files (and at least 10)" in shown

    cli("deployment", "update", prod, "--max-removal-ratio", "0.25", "--min-removals", "3").ok()
    updated = cli("deployment", "update", prod, "--promote-only", "--from", staging, "--json")
    body = updated.ok().json()
    assert (body["promote_only"], body["promote_from"], body["max_removal_ratio"]) == (
        True,
        staging,
        0.25,
    )
    shown = cli("deployment", "inspect", prod).ok().out
    assert re.search(rf"Promote only +yes, promotions from {staging}", shown), shown
    assert "more than 25% of the DAG files (and at least 3)" in shown

    cli("deployment", "update", prod, "--from", staging).usage_error("--promote-only --from")
    cli("deployment", "update", prod, "--max-removal-ratio", "2").usage_error(
        "--max-removal-ratio", "less than or equal to 1"
    )
    off = cli("deployment", "update", prod, "--no-promote-only", "--json").ok().json()
    assert (off["promote_only"], off["promote_from"]) == (False, None)


def test_promote_only_deployment_takes_promotions_from_its_source(
    cli: Cli, api: Api, project: Path
) -> None:
    staging, prod, other = unique("staging"), unique("prod"), unique("other")
    for name in (staging, prod, other):
        api.create_deployment(name)
        cli("deploy", project, "-d", name, "--no-parse").ok()
    cli("deployment", "update", prod, "--promote-only", "--from", staging).ok()
    operator = cli.as_token(api.create_token("operator"))
    write(project, "dags/dag_0.py", f"# new for {staging}\n")
    before = current(api, prod)

    direct = operator("deploy", project, "-d", prod, "--no-parse", "--json")
    direct.failed(f"takes promotions only (from {staging})", f"--to {prod}")
    assert direct.json()["code"] == "promote_only"
    operator("rollback", prod).failed("promotions only", "rollbacks need an admin token")
    operator("promote", "--from", other, "--to", prod).failed(f"from {staging} only")
    assert current(api, prod) == before

    operator("deploy", project, "-d", staging, "--no-parse").ok()
    promoted = operator("promote", "--from", staging, "--to", prod, "--json").ok().json()
    assert (promoted["deployment"], promoted["source_deployment"]) == (prod, staging)
    assert api.deploy_count(prod) == before[0] + 1


def test_branch_of_a_promote_only_deployment_deploys_to_its_source_then_promotes(
    cli: Cli, api: Api, project: Path, tmp_path: Path
) -> None:
    staging, prod = unique("staging"), unique("prod")
    for name in (staging, prod):
        api.create_deployment(name)
    write(project, "dagship.yaml", f"deployments:\n  main: {prod}\n  develop: {staging}\n")
    cli("deployment", "update", prod, "--promote-only", "--from", staging).ok()
    operator = cli.as_token(api.create_token("operator"))

    result = operator("deploy", project, "--branch", "main", "--no-parse", "--json").ok().json()
    assert (result["deployment"], result["origin"], result["deployed"]) == (prod, "promote", True)
    assert (result["source_deployment"], result["branch"]) == (staging, "main")
    via = api.get(f"/deployments/{staging}").json()["current"]
    assert result["via"]["id"] == via["id"] == result["source"]["id"]
    assert result["dags_version"] == via["dags_version"]
    # The outputs CI steps read name the protected deployment and its new deploy.
    (tmp_path / "result.json").write_text(json.dumps(result))
    outputs = cli(
        "ci", "outputs", tmp_path / "result.json", "--github-output", tmp_path / "out", "--json"
    )
    outputs = outputs.ok().json()
    assert (outputs["deployment"], outputs["deploy-id"]) == (prod, result["id"])

    human = operator("deploy", project, "--branch", "main", "--no-parse").ok().out
    assert f"Deployment {prod} takes promotions only: promoting from {staging}" in human
    assert "nothing to promote" in human
    # Named directly, the protected deployment refuses the operator's deploy.
    write(project, "dags/dag_0.py", f"# hotfix for {prod}\n")
    operator("deploy", project, "-d", prod, "--no-parse").failed("promotions only")
