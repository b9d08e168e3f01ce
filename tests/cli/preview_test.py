"""`dagship preview name|create|deploy|delete|list|cleanup` through the real CLI."""

from __future__ import annotations

import time
from pathlib import Path

from dagship.core.naming import preview_name
from tests.conftest import ServerFactory
from tests.helpers import Api, Cli, Server, make_project, unique, write

BRANCH = "feature/ABC-12 fix"
NAME = "preview-feature-abc-12-fix"


def test_preview_lifecycle_for_a_branch_with_slashes_and_spaces(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    dev = unique("dev")
    api.create_deployment(dev, airflow_url="http://airflow-dev.example:8080")
    deployed = cli("deploy", project, "--no-parse", "-d", dev, "--json").ok().json()
    assert cli("preview", "name", BRANCH).ok().out.strip() == NAME
    assert cli("preview", "name", BRANCH, "--json").ok().json() == {"name": NAME, "branch": BRANCH}

    blobs = server.blob_count()
    out = cli("preview", "create", "--from", dev, "--name", BRANCH).ok().out
    assert f"Created preview {NAME} of branch {BRANCH} from {dev} deploy #1" in out
    assert "nothing uploaded" in out
    assert server.blob_count() == blobs
    info = api.get(f"/deployments/{NAME}").json()
    assert info["current"]["dags_version"] == deployed["dags_version"]
    assert info["current"]["project_version"] == deployed["project_version"]
    assert info["airflow_url"] == "http://airflow-dev.example:8080"

    # CI runs create on every push: the second time changes nothing and says so.
    again = cli("preview", "create", "--from", dev, "--name", BRANCH).ok().out
    assert f"Preview {NAME} of branch {BRANCH} already exists" in again
    assert "nothing changed" in again
    body = cli("preview", "create", "--from", dev, "--name", BRANCH, "--json").ok().json()
    assert body["created"] is False and body["preview"]["name"] == NAME
    assert api.deploy_count(NAME) == 1

    # Deploying the branch's change uploads only that file.
    write(project, "dags/dag_1.py", "# changed on the branch\n")
    deployed = (
        cli("preview", "deploy", "--name", BRANCH, project, "--no-parse", "--json").ok().json()
    )
    assert (deployed["deployment"], deployed["seq"], deployed["kind"]) == (NAME, 2, "dags")
    assert (deployed["uploaded_files"], deployed["unchanged"]) == (1, False)
    unchanged = cli("preview", "deploy", "--name", BRANCH, project, "--no-parse")
    assert "unchanged" in unchanged.ok().out and "nothing to deploy" in unchanged.out
    assert api.get(f"/deployments/{dev}").json()["current"]["seq"] == 1

    listed = cli("preview", "list", "--json").ok().json()
    mine = next(p for p in listed if p["name"] == NAME)
    assert (mine["source"], mine["branch"], mine["current"]["seq"]) == (dev, BRANCH, 2)
    table = cli("preview", "list").ok().out
    assert "LAST ACTIVITY" in table and NAME in table and BRANCH in table

    out = cli("preview", "delete", "--name", BRANCH).ok().out
    assert f"Deleted preview {NAME} of branch {BRANCH}." in out
    assert api.get(f"/deployments/{NAME}").status_code == 404
    out = cli("preview", "delete", "--name", BRANCH).ok().out
    assert f"There is no preview {NAME} for branch {BRANCH}; nothing to delete." in out
    gone = cli("preview", "delete", "--name", BRANCH, "--json").ok().json()
    assert gone == {"deleted": False, "name": NAME, "branch": BRANCH}
    cli("preview", "deploy", "--name", BRANCH, project, "--no-parse").failed(
        f"there is no preview for branch '{BRANCH}'", "dagship preview create --from"
    )


def test_preview_with_its_own_airflow(cli: Cli, api: Api, project: Path) -> None:
    dev = unique("dev")
    api.create_deployment(dev)
    cli("deploy", project, "--no-parse", "-d", dev).ok()
    branch = f"pr/{unique('b')}"
    body = (
        cli(
            "preview",
            "create",
            "--from",
            dev,
            "--name",
            branch,
            "--airflow-url",
            "http://127.0.0.1:9/",
            "--json",
        )
        .ok()
        .json()
    )
    assert body["created"] is True and body["preview"]["airflow_url"] == "http://127.0.0.1:9"
    assert body["deploy"]["origin"] == "promote" and body["deploy"]["source_deployment"] == dev
    # --wait follows the preview's Airflow like `dagship deploy --wait` (unreachable here).
    write(project, "dags/dag_2.py", "# branch change\n")
    result = cli(
        "preview", "deploy", "--name", branch, project, "--no-parse", "--wait", "--timeout", "1"
    )
    result.failed("timed out")
    assert api.deploy_count(body["preview"]["name"]) == 2
    cli("preview", "delete", "--name", branch).ok()


def test_preview_refusals(cli: Cli, api: Api, project: Path) -> None:
    dev = unique("dev")
    api.create_deployment(dev)
    plain = unique("x")
    api.create_deployment(f"preview-{plain}")
    cli("preview", "create", "--from", dev, "--name", plain).failed("not a preview")
    cli("preview", "deploy", "--name", plain, project, "--no-parse").failed("is not a preview")
    cli("preview", "delete", "--name", plain).failed("is not a preview", "deployment delete")
    assert api.get(f"/deployments/preview-{plain}").status_code == 200
    cli("preview", "create", "--from", dev, "--name", "***").failed("letters or digits")
    cli("preview", "name", "///").failed("letters or digits")
    author = cli.as_token(api.create_token("dag-author"))
    author("preview", "create", "--from", dev, "--name", "feature/x").failed(
        "managing previews need operator"
    )
    author("preview", "cleanup", "--idle", "1d").failed("operator")
    operator = cli.as_token(api.create_token("operator"))
    wanted = f"feature/{unique('y')}"
    operator(
        "preview", "create", "--from", dev, "--name", wanted, "--airflow-url", "http://x"
    ).failed("choosing an Airflow URL needs an admin", "leave --airflow-url out")
    assert api.get(f"/deployments/{preview_name(wanted)}").status_code == 404
    cli("preview", "cleanup", "--idle", "soon").usage_error("not a duration")


def test_cleanup_removes_only_idle_previews(make_server: ServerFactory, tmp_path: Path) -> None:
    srv = make_server("sqlite", env={"DAGSHIP_PREVIEW_IDLE_TIMEOUT": "off"})
    cli = Cli(srv.url, srv.admin_token)
    project = make_project(tmp_path / "p")
    dev = unique("dev")
    srv.api().create_deployment(dev)
    cli("deploy", project, "--no-parse", "-d", dev).ok()
    cli("preview", "create", "--from", dev, "--name", "feature/old").ok()
    # Margins a busy machine keeps: the old one is idle over 4.5 s, the new one (created just
    # before the cleanup) under 3 s unless creating it and cleaning up take that long.
    time.sleep(4.5)
    cli("preview", "create", "--from", dev, "--name", "feature/new").ok()
    out = cli("preview", "cleanup", "--idle", "3s").ok().out
    assert "Deleted 1 preview(s) idle for more than 3s:" in out
    assert "preview-feature-old (branch feature/old" in out
    names = [p["name"] for p in cli("preview", "list", "--json").ok().json()]
    assert names == ["preview-feature-new"]
    body = cli("preview", "cleanup", "--idle", "1h", "--json").ok().json()
    assert body == {"idle_seconds": 3600, "deleted": []}
    assert cli("preview", "cleanup", "--idle", "1h").ok().out == (
        "No preview has been idle for more than 1h; nothing deleted.\n"
    )
    # Durations print as people write them, not as seconds (604800s).
    assert "more than 7d;" in cli("preview", "cleanup", "--idle", "7d").ok().out
    cli("preview", "cleanup").failed("DAGSHIP_PREVIEW_IDLE_TIMEOUT is off", "--idle 7d")
