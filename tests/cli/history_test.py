"""`dagship deploys list|inspect|diff` and `dagship rollback` through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.helpers import Api, Cli, Server, deploy_of, git, unique, write

DEPLOY_FIELDS = {
    "id",
    "seq",
    "deployment",
    "kind",
    "origin",
    "dags_version",
    "project_version",
    "uploaded_files",
    "uploaded_bytes",
    "created_at",
    "token_id",
    "git_sha",
    "git_branch",
    "git_author",
    "git_message",
    "description",
}


def history(cli: Cli, api: Api, project: Path) -> tuple[str, list[dict[str, Any]]]:
    """A deployment with three deploys: full, then a DAG change, then a project change."""
    name = unique()
    api.create_deployment(name)
    outs = [cli("deploy", project, "--deployment", name, "--no-parse", "--json").ok().json()]
    write(project, "dags/dag_0.py", "# changed dag\n")
    write(project, "dags/new_dag.py", "# added dag\n")
    (project / "dags" / "dag_2.py").unlink()
    outs.append(cli("deploy", project, "--deployment", name, "--no-parse", "--json").ok().json())
    write(project, "requirements.txt", "changed\n")
    outs.append(
        cli("deploy", project, "-d", name, "--no-parse", "--json", "--description", "third")
        .ok()
        .json()
    )
    return name, outs


def test_list_and_inspect(cli: Cli, api: Api, project: Path) -> None:
    name, outs = history(cli, api, project)
    listed = cli("deploys", "list", name, "--json").ok().json()
    assert [d["seq"] for d in listed] == [3, 2, 1]
    assert [d["id"] for d in listed] == [o["id"] for o in reversed(outs)]
    for d in listed:
        assert set(d) >= DEPLOY_FIELDS
        assert d["origin"] == "cli" and d["created_at"]
    assert listed[0]["description"] == "third"
    assert [
        d["seq"] for d in cli("deploys", "list", name, "--limit", "2", "--json").ok().json()
    ] == [3, 2]
    human = cli("deploys", "list", name).ok().out
    assert all(o["id"] in human for o in outs) or all(str(o["seq"]) in human for o in outs)

    inspected = cli("deploys", "inspect", outs[1]["id"], "--json").ok().json()
    from_api = api.get(f"/deploys/{outs[1]['id']}").json()
    assert {k: inspected[k] for k in DEPLOY_FIELDS} == {k: from_api[k] for k in DEPLOY_FIELDS}
    assert outs[1]["id"] in cli("deploys", "inspect", outs[1]["id"]).ok().out
    cli("deploys", "inspect", "dpl_0000000000000000").failed("does not exist")
    cli("deploys", "list", unique("nope")).failed("does not exist")


def test_diff(cli: Cli, api: Api, project: Path) -> None:
    _, outs = history(cli, api, project)
    d = cli("deploys", "diff", outs[0]["id"], outs[1]["id"], "--json").ok().json()
    ids = [x["id"] if isinstance(x, dict) else x for x in (d["from"], d["to"])]
    assert ids == [outs[0]["id"], outs[1]["id"]]
    assert d["dags"] == {"added": ["new_dag.py"], "removed": ["dag_2.py"], "changed": ["dag_0.py"]}
    assert d["project"] == {"added": [], "removed": [], "changed": []}
    d2 = cli("deploys", "diff", outs[1]["id"], outs[2]["id"], "--json").ok().json()
    assert d2["dags"] == {"added": [], "removed": [], "changed": []}
    assert d2["project"]["changed"] == ["requirements.txt"]
    human = cli("deploys", "diff", outs[0]["id"], outs[1]["id"]).ok().out
    assert "new_dag.py" in human and "dag_2.py" in human
    cli("deploys", "diff", outs[0]["id"], "dpl_0000000000000000").failed("does not exist")


def test_rollback_default_and_to(cli: Cli, api: Api, server: Server, project: Path) -> None:
    name, outs = history(cli, api, project)
    blobs = server.blob_count()
    back = cli("rollback", name, "--json").ok().json()
    d = deploy_of(back)
    assert back["unchanged"] is False
    assert (d["seq"], d["origin"]) == (4, "rollback")
    assert (d["dags_version"], d["project_version"]) == (
        outs[1]["dags_version"],
        outs[1]["project_version"],
    )
    assert (d["uploaded_files"], d["uploaded_bytes"]) == (0, 0)
    assert d["source_deploy_id"] == outs[1]["id"]
    assert server.blob_count() == blobs

    to_first = deploy_of(cli("rollback", name, "--to", "1", "--json").ok().json())
    assert to_first["seq"] == 5 and to_first["source_deploy_id"] == outs[0]["id"]
    assert to_first["dags_version"] == outs[0]["dags_version"]
    current = api.get(f"/deployments/{name}/dags/current").json()
    assert current["version"] == outs[0]["dags_version"]

    same = cli("rollback", name, "--to", "1", "--json").ok().json()
    assert same["unchanged"] is True
    assert api.deploy_count(name) == 5
    assert "already runs" in cli("rollback", name, "--to", "1").ok().out.lower()
    assert server.blob_count() == blobs

    cli("rollback", name, "--to", "99").failed("99")
    assert api.deploy_count(name) == 5


def test_rollback_needs_an_earlier_deploy(cli: Cli, api: Api, project: Path) -> None:
    name = unique()
    api.create_deployment(name)
    cli("rollback", name).failed()
    cli("deploy", project, "--deployment", name, "--no-parse").ok()
    cli("rollback", name).failed("earlier")
    assert api.deploy_count(name) == 1


def test_rollback_needs_operator(cli: Cli, api: Api, project: Path) -> None:
    name, _ = history(cli, api, project)
    author = cli.as_token(api.create_token("dag-author"))
    author("rollback", name).failed("dag-author", "operator")
    assert api.deploy_count(name) == 3
    viewer = cli.as_token(api.create_token("viewer", deployment=name))
    assert len(viewer("deploys", "list", name, "--json").ok().json()) == 3


def test_list_shows_who_and_commit(cli: Cli, api: Api, project: Path) -> None:
    name = unique("who")
    api.create_deployment(name)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "first")
    sha = git(project, "rev-parse", "HEAD")
    ci = cli.as_token(api.create_token("operator", name, description="GitHub CI"))
    ci("deploy", project, "-d", name, "--no-parse").ok()
    silent = cli.as_token(api.create_token("operator", name))
    write(project, "dags/dag_0.py", "# second\n")
    second = silent("deploy", project, "-d", name, "--no-parse", "--json").ok().json()

    listed = cli("deploys", "list", name, "--json").ok().json()
    assert [d["token_description"] for d in listed] == ["", "GitHub CI"]
    lines = cli("deploys", "list", name).ok().out.splitlines()
    header = lines[0].split()
    assert header[:6] == ["SEQ", "ID", "KIND", "ORIGIN", "WHO", "COMMIT"]
    # A token without a description is shown by its id.
    who = second["token_id"]
    assert re.search(rf"^ *#2 +{second['id']} +dags +cli +{who} +{sha[:8]} ", lines[1])
    assert re.search(rf"^ *#1 +dpl_\w+ +full +cli +GitHub CI +{sha[:8]} \(main\) ", lines[2])
    shown = cli("deploys", "inspect", f"{name}:1").ok().out
    assert re.search(r"Who +GitHub CI", shown), shown
