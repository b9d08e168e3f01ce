"""`dagship deploy` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dagship.core.manifest import EMPTY_VERSION
from tests.helpers import Api, Cli, Server, dag_source, git, sha256, unique, write

JSON_FIELDS = {
    "id",
    "seq",
    "deployment",
    "kind",
    "dags_version",
    "project_version",
    "uploaded_files",
    "uploaded_bytes",
    "unchanged",
}


def new_deployment(api: Api, **fields: Any) -> str:
    return str(api.create_deployment(unique(), **fields)["name"])


def deploy(cli: Cli, root: Path, name: str, *flags: str) -> dict[str, Any]:
    return dict(
        cli("deploy", root, "--deployment", name, "--no-parse", "--json", *flags).ok().json()
    )


def distinct_files(root: Path) -> dict[str, int]:
    """Digest -> size of every file the plain test project deploys."""
    return {sha256(p.read_bytes()): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_first_deploy_uploads_everything_once(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    name = new_deployment(api)
    write(project, "dags/same_as_0.py", (project / "dags/dag_0.py").read_text())
    out = deploy(cli, project, name)
    assert set(out) >= JSON_FIELDS
    assert (out["seq"], out["deployment"], out["kind"], out["unchanged"]) == (
        1,
        name,
        "full",
        False,
    )
    blobs = distinct_files(project)
    assert out["uploaded_files"] == len(blobs)  # the duplicate is uploaded once
    assert out["uploaded_bytes"] == sum(blobs.values())
    record = api.get(f"/deploys/{out['id']}").json()
    assert (record["dags_version"], record["project_version"]) == (
        out["dags_version"],
        out["project_version"],
    )
    assert record["origin"] == "cli" and record["token_id"]
    assert set(blobs) <= set(server.stored_blob_files())


def test_unchanged_deploy_creates_nothing(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    first = deploy(cli, project, name)
    again = deploy(cli, project, name)
    assert again["unchanged"] is True
    assert (again["uploaded_files"], again["uploaded_bytes"]) == (0, 0)
    assert (again["dags_version"], again["project_version"]) == (
        first["dags_version"],
        first["project_version"],
    )
    assert api.deploy_count(name) == 1
    human = cli("deploy", project, "--deployment", name).ok()
    assert "unchanged" in human.out.lower()
    assert api.deploy_count(name) == 1


def test_one_file_change_uploads_exactly_one_blob(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    name = new_deployment(api)
    first = deploy(cli, project, name)
    changed = write(project, "dags/dag_1.py", dag_source("dag_1", f"# {name} edit\n"))
    blobs_before = server.blob_count()
    out = deploy(cli, project, name)
    assert (out["kind"], out["seq"], out["unchanged"]) == ("dags", 2, False)
    assert out["uploaded_files"] == 1
    assert out["uploaded_bytes"] == changed.stat().st_size
    assert server.blob_count() == blobs_before + 1
    assert out["project_version"] == first["project_version"]
    assert out["dags_version"] != first["dags_version"]


def test_content_already_stored_uploads_nothing(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    deploy(cli, project, name)
    shutil.copy(project / "dags" / "dag_0.py", project / "dags" / "copy_of_0.py")
    out = deploy(cli, project, name)
    assert (out["kind"], out["uploaded_files"], out["uploaded_bytes"]) == ("dags", 0, 0)
    assert api.deploy_count(name) == 2


def test_auto_picks_project_or_full(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    first = deploy(cli, project, name)
    # Content unique to this test: blobs are shared by every deployment on the server.
    write(project, "requirements.txt", f"pendulum>=3\npandas\n# {name}\n")
    proj = deploy(cli, project, name)
    assert proj["kind"] == "project" and proj["uploaded_files"] == 1
    assert proj["dags_version"] == first["dags_version"]
    write(project, "requirements.txt", f"pandas\n# {name}\n")
    write(project, "dags/dag_0.py", f"# both changed in {name}\n")
    full = deploy(cli, project, name)
    assert full["kind"] == "full" and full["uploaded_files"] == 2
    assert [d["kind"] for d in api.deploys(name)] == ["full", "project", "full"]


def test_dags_flag_carries_the_project_forward(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    out = deploy(cli, project, name, "--dags")
    assert out["kind"] == "dags"
    assert out["project_version"] == EMPTY_VERSION  # nothing to carry forward yet
    proj = deploy(cli, project, name, "--project")
    assert proj["kind"] == "project" and proj["dags_version"] == out["dags_version"]
    # A project change is not deployed by --dags: the deployed project version is kept.
    write(project, "requirements.txt", "changed\n")
    write(project, "dags/dag_2.py", "# new dags\n")
    dags = deploy(cli, project, name, "--dags")
    assert dags["kind"] == "dags"
    assert dags["project_version"] == proj["project_version"]
    project_only = deploy(cli, project, name, "--project")
    assert project_only["dags_version"] == dags["dags_version"]
    assert project_only["project_version"] != proj["project_version"]


def test_two_repositories_feed_one_deployment(cli: Cli, api: Api, tmp_path: Path) -> None:
    name = new_deployment(api)
    dags_repo = tmp_path / "dags-repo"
    write(dags_repo, "dags/etl.py", dag_source("etl"))
    platform_repo = tmp_path / "platform-repo"
    write(platform_repo, "requirements.txt", "apache-airflow-providers-amazon\n")
    write(platform_repo, "dags/placeholder.py", "# not the real dags\n")
    one = deploy(cli, dags_repo, name, "--dags")
    two = deploy(cli, platform_repo, name, "--project")
    assert two["dags_version"] == one["dags_version"]
    write(dags_repo, "dags/etl.py", dag_source("etl", "# v2\n"))
    three = deploy(cli, dags_repo, name, "--dags")
    assert three["project_version"] == two["project_version"]


def test_description_and_git_are_recorded(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    git(project, "init", "-q", "-b", "release")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Ship the DAGs")
    out = deploy(cli, project, name, "--description", "Friday deploy")
    record = api.get(f"/deploys/{out['id']}").json()
    assert record["description"] == "Friday deploy"
    assert record["git_sha"] == git(project, "rev-parse", "HEAD")
    assert record["git_branch"] == "release"
    assert record["git_message"] == "Ship the DAGs"
    assert "Ada Author" in record["git_author"]
    assert record["git_dirty"] is False


def test_a_deploy_of_uncommitted_changes_is_recorded_dirty(
    cli: Cli, api: Api, project: Path
) -> None:
    name = new_deployment(api)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Ship the DAGs")
    write(project, "dags/dag_0.py", "# edited, not committed\n")
    out = deploy(cli, project, name)
    record = api.get(f"/deploys/{out['id']}").json()
    assert (record["git_sha"], record["git_dirty"]) == (git(project, "rev-parse", "HEAD"), True)
    short = record["git_sha"][:8]
    assert f"{short} (main, dirty)" in cli("deploys", "list", name).ok().out
    assert f"{record['git_sha']} (dirty)" in cli("deploys", "inspect", out["id"]).ok().out


def test_expect_seq(cli: Cli, api: Api, server: Server, project: Path) -> None:
    name = new_deployment(api)
    deploy(cli, project, name, "--expect-seq", "0")
    write(project, "dags/dag_0.py", f"# two {name}\n")
    deploy(cli, project, name, "--expect-seq", "1")
    write(project, "dags/dag_0.py", f"# three {name}\n")
    blobs = server.blob_count()
    cli("deploy", project, "--deployment", name, "--expect-seq", "1").failed("seq", "2")
    assert api.deploy_count(name) == 2
    assert server.blob_count() == blobs


def test_no_dag_deploys(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api, dag_deploys=False)
    cli("deploy", project, "--deployment", name, "--dags").failed(
        "dag deploys disabled", "--dag-deploys"
    )
    assert api.deploy_count(name) == 0
    # With DAG deploys disabled the project is the whole tree: --project makes a full deploy.
    first = deploy(cli, project, name, "--project")
    assert first["kind"] == "full"
    write(project, "dags/dag_0.py", "# only a dag changed\n")
    second = deploy(cli, project, name)
    assert second["kind"] == "full"  # with DAG deploys disabled every deploy is full
    assert second["project_version"] == first["project_version"]


def test_dag_author_token(cli: Cli, api: Api, server: Server, project: Path) -> None:
    name = new_deployment(api)
    author = cli.as_token(api.create_token("dag-author", deployment=name))
    blobs = server.blob_count()
    author("deploy", project, "--deployment", name, "--project").failed(
        "dag-author", "operator", "dagship token create --role operator"
    )
    # Without a check to run first, the refusal comes from the upload's first question.
    author("deploy", project, "--deployment", name, "--project", "--no-parse").failed("operator")
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs, "a refused deploy stores nothing"
    out = dict(
        author("deploy", project, "--deployment", name, "--dags", "--no-parse", "--json")
        .ok()
        .json()
    )
    assert out["kind"] == "dags"
    write(project, "requirements.txt", f"new requirement {name}\n")
    blobs = server.blob_count()
    # Auto mode needs a project deploy now, which the token cannot make.
    author("deploy", project, "--deployment", name).failed("operator")
    assert api.deploy_count(name) == 1
    assert server.blob_count() == blobs, "a refused deploy stores nothing"


def test_deploy_errors(cli: Cli, api: Api, project: Path, tmp_path: Path) -> None:
    cli("deploy", project, "--deployment", unique("nope")).failed("does not exist")
    name = new_deployment(api)
    cli("deploy", tmp_path / "no-such-folder", "--deployment", name).failed("no-such-folder")
    both = cli("deploy", project, "--deployment", name, "--dags", "--project")
    assert both.code != 0
    missing = cli("deploy", project)
    assert missing.code != 0 and "deployment" in (missing.err + missing.out).lower()
    assert api.deploy_count(name) == 0


def test_human_output(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    out = cli("deploy", project, "--deployment", name, "--no-parse").ok()
    assert name in out.out
    assert api.deploys(name)[0]["id"] in out.out


def test_subprocess_deploy_end_to_end(cli: Cli, api: Api, project: Path) -> None:
    name = new_deployment(api)
    result = cli.run("deploy", project, "--deployment", name, "--no-parse", "--json").ok()
    assert result.json()["seq"] == 1
    again = cli.run("deploy", project, "--deployment", name, "--json").ok()
    assert again.json()["unchanged"] is True
    assert api.deploy_count(name) == 1
