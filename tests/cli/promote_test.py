"""`dagship promote` and `dagship deploys diff` across deployments, through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import Api, Cli, Server, unique, write


def dev_and_prod(cli: Cli, api: Api, project: Path) -> tuple[str, str, dict]:
    """dev with the project deployed, prod with an older version of it."""
    dev, prod = unique("dev"), unique("prod")
    api.create_deployment(dev)
    api.create_deployment(prod)
    cli("deploy", project, "--no-parse", "-d", prod).ok()
    write(project, "dags/dag_0.py", f"# changed on {dev}\n")
    write(project, "requirements.txt", f"pandas  # {dev}\n")
    deployed = cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    return dev, prod, deployed


def test_promote_uploads_nothing_and_prod_runs_devs_versions(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    dev, prod, deployed = dev_and_prod(cli, api, project)
    blobs = server.blob_count()
    result = cli("promote", "--from", dev, "--to", prod, "--description", "release 1", "--json")
    body = result.ok().json()
    assert server.blob_count() == blobs
    assert body["unchanged"] is False
    assert (body["deployment"], body["seq"], body["origin"], body["kind"]) == (
        prod,
        2,
        "promote",
        "full",
    )
    assert (body["uploaded_files"], body["uploaded_bytes"]) == (0, 0)
    assert (body["source_deployment"], body["source_seq"]) == (dev, 1)
    assert body["source"]["id"] == deployed["id"]
    current = api.get(f"/deployments/{prod}").json()["current"]
    assert (current["dags_version"], current["project_version"]) == (
        deployed["dags_version"],
        deployed["project_version"],
    )
    assert current["description"] == "release 1"

    # History shows where it came from, in both forms.
    listed = cli("deploys", "list", prod, "--json").ok().json()
    assert (listed[0]["source_deployment"], listed[0]["source_seq"]) == (dev, 1)
    assert f"promote from {dev}#1" in cli("deploys", "list", prod).ok().out
    shown = cli("deploys", "inspect", body["id"]).ok().out
    assert re.search(rf"Promoted from +{dev} deploy #1 \({deployed['id']}\)", shown), shown

    # Again: nothing to do, said plainly, exit 0.
    again = cli("promote", "--from", dev, "--to", prod)
    assert "already runs the versions" in again.ok().out
    assert "nothing to promote" in again.out
    assert cli("promote", "--from", dev, "--to", prod, "--json").ok().json()["unchanged"] is True
    assert api.deploy_count(prod) == 2


def test_promote_human_output_and_seq(cli: Cli, api: Api, project: Path) -> None:
    dev, prod, first = dev_and_prod(cli, api, project)
    write(project, "dags/dag_1.py", "# second dev deploy\n")
    cli("deploy", project, "--no-parse", "-d", dev).ok()
    out = cli("promote", "--from", dev, "--to", prod, "--seq", "1").ok().out
    assert f"Promoted {dev} deploy #1 ({first['id']}) to {prod}: deploy #2" in out
    assert "nothing uploaded" in out
    current = api.get(f"/deployments/{prod}").json()["current"]
    assert current["dags_version"] == first["dags_version"]
    cli("promote", "--from", dev, "--to", prod, "--seq", "9").failed("has no deploy 9")
    cli("promote", "--from", dev, "--to", prod, "--expect-seq", "1").failed(
        "not the expected seq 1"
    )
    assert api.deploy_count(prod) == 2


def test_promote_refused_for_a_token_not_allowed_on_prod(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    dev, prod, _ = dev_and_prod(cli, api, project)
    before = api.deploys(prod)
    dev_only = cli.as_token(api.create_token("operator", dev))
    dev_only("promote", "--from", dev, "--to", prod).failed(
        f"token is bound to deployment {dev}; it cannot act on {prod}"
    )
    author = cli.as_token(api.create_token("dag-author"))
    author("promote", "--from", dev, "--to", prod).failed(
        "token has role dag-author; full deploys need operator",
        "dagship token create --role operator",
    )
    assert api.deploys(prod) == before


def test_dry_run_shows_the_diff_and_changes_nothing(cli: Cli, api: Api, project: Path) -> None:
    dev, prod, _ = dev_and_prod(cli, api, project)
    out = cli("promote", "--from", dev, "--to", prod, "--dry-run").ok().out
    assert "Dry run" in out and "Nothing was changed." in out
    assert "~ dag_0.py" in out and "~ requirements.txt" in out
    body = cli("promote", "--from", dev, "--to", prod, "--dry-run", "--json").ok().json()
    assert body["dry_run"] is True and body["kind"] == "full"
    assert body["dags"]["changed"] == ["dag_0.py"]
    assert body["project"]["changed"] == ["requirements.txt"]
    assert api.deploy_count(prod) == 1


def test_promote_wait_without_airflow_fails_plainly(cli: Cli, api: Api, project: Path) -> None:
    dev, prod, deployed = dev_and_prod(cli, api, project)
    # prod's agent already runs dev's project (tests/cli/agents_test.py waits for agents).
    agent = {"host": "af", "components": ["standalone"], "state": "running"}
    agent["project_version"] = deployed["project_version"]
    assert api.put(f"/deployments/{prod}/agents/af", json=agent).status_code == 200
    result = cli("promote", "--from", dev, "--to", prod, "--wait")
    result.failed("no Airflow URL")
    # The promotion itself happened; only the wait could not.
    assert api.deploy_count(prod) == 2
    # Already promoted: --wait follows the current deploy, with deploy --wait's JSON shape.
    body = cli("promote", "--from", dev, "--to", prod, "--wait", "--json")
    assert body.code == 1
    answer = body.json()
    assert (answer["unchanged"], answer["seq"], answer["wait"]["state"]) == (True, 2, "no_airflow")
    assert answer["dags"] == [] and answer["import_errors"] == []


def test_deploys_diff_across_deployments(cli: Cli, api: Api, project: Path) -> None:
    dev, prod, deployed = dev_and_prod(cli, api, project)
    body = cli("deploys", "diff", prod, dev, "--json").ok().json()
    assert (body["from"]["deployment"], body["to"]["id"]) == (prod, deployed["id"])
    assert body["dags"] == {"added": [], "removed": [], "changed": ["dag_0.py"]}
    assert body["project"] == {"added": [], "removed": [], "changed": ["requirements.txt"]}
    out = cli("deploys", "diff", prod, f"{dev}:1").ok().out
    assert f"From {prod} deploy #1" in out and f"to {dev} deploy #1 ({deployed['id']})" in out
    assert "~ dag_0.py" in out and "~ requirements.txt" in out
    same = cli("deploys", "diff", f"{dev}:1", deployed["id"]).ok().out
    assert "DAG bundle: no changes" in same and "Project: no changes" in same
    cli("deploys", "diff", prod, f"{dev}:x").failed("NAME:SEQ")
    cli("deploys", "diff", prod, unique("nope")).failed("does not exist")
