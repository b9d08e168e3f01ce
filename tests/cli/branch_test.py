"""`dagship deploy --branch`: the deployment comes from dagship.yaml's branch map."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Api, Cli, git, unique, write

GITHUB_PUSH = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_REF_TYPE": "branch",
}


def mapped_project(project: Path, branches: dict[str, str]) -> Path:
    lines = "".join(f"  {branch!r}: {name}\n" for branch, name in branches.items())
    write(project, "dagship.yaml", f"deployments:\n{lines}")
    return project


def github_push(branch: str) -> dict[str, str]:
    return {**GITHUB_PUSH, "GITHUB_REF": f"refs/heads/{branch}", "GITHUB_REF_NAME": branch}


def test_auto_deploys_the_mapped_deployment_from_ci_variables(
    cli: Cli, api: Api, project: Path
) -> None:
    prod, staging = unique("prod"), unique("staging")
    api.create_deployment(prod)
    api.create_deployment(staging)
    mapped_project(project, {"main": prod, "release/*": staging})
    git(project, "init", "-q", "-b", "work")
    git(project, "add", ".")
    git(project, "commit", "-qm", "first")
    git(project, "checkout", "-q", "--detach")  # as CI systems check out

    out = cli(
        "deploy",
        project,
        "--no-parse",
        "--branch",
        "auto",
        "--json",
        env=github_push("release/2.1"),
    )
    body = out.ok().json()
    assert (body["deployment"], body["branch"], body["branch_source"]) == (
        staging,
        "release/2.1",
        "github",
    )
    assert body["deployed"] is True and body["seq"] == 1
    record = api.deploys(staging)[0]
    assert record["origin"] == "ci"
    assert record["git_branch"] == "release/2.1"
    assert record["git_sha"] == git(project, "rev-parse", "HEAD")
    assert api.deploy_count(prod) == 0

    human = cli("deploy", project, "--no-parse", "--branch", "auto", env=github_push("main")).ok()
    assert f"Branch main (github) deploys to {prod}." in human.out
    assert api.deploys(prod)[0]["origin"] == "ci"


def test_unmapped_branch_deploys_nothing_and_exits_0(cli: Cli, api: Api, project: Path) -> None:
    prod = api.create_deployment()["name"]
    mapped_project(project, {"main": prod})
    human = cli(
        "deploy", project, "--no-parse", "--branch", "auto", env=github_push("feature/x")
    ).ok()
    lines = human.out.strip().splitlines()
    assert lines == [
        "Branch feature/x maps to no deployment in dagship.yaml (mapped: main): nothing deployed."
    ]
    body = cli("deploy", project, "--no-parse", "--branch", "feature/x", "--json").ok().json()
    assert body == {
        "branch": "feature/x",
        "branch_source": "argument",
        "deployment": None,
        "reason": "branch feature/x maps to no deployment in dagship.yaml (mapped: main): "
        "nothing deployed",
        "deployed": False,
    }
    assert api.deploy_count(prod) == 0


def test_tag_build_deploys_nothing(cli: Cli, api: Api, project: Path) -> None:
    prod = api.create_deployment()["name"]
    mapped_project(project, {"*": prod})
    env = {**GITHUB_PUSH, "GITHUB_REF": "refs/tags/v1", "GITHUB_REF_NAME": "v1"}
    env["GITHUB_REF_TYPE"] = "tag"
    out = cli("deploy", project, "--no-parse", "--branch", "auto", env=env).ok()
    assert "tag v1, not a branch: nothing deployed" in out.out
    assert api.deploy_count(prod) == 0


def test_branch_from_git_outside_ci(cli: Cli, api: Api, project: Path) -> None:
    dev = api.create_deployment()["name"]
    mapped_project(project, {"develop": dev})
    git(project, "init", "-q", "-b", "develop")
    git(project, "add", ".")
    git(project, "commit", "-qm", "first")
    body = cli("deploy", project, "--no-parse", "--branch", "auto", "--json").ok().json()
    assert (body["deployment"], body["branch_source"]) == (dev, "git")
    record = api.deploys(dev)[0]
    assert (record["origin"], record["git_branch"]) == ("cli", "develop")

    git(project, "checkout", "-q", "--detach")
    cli("deploy", project, "--no-parse", "--branch", "auto").failed(
        "cannot tell which branch", "detached HEAD", "--branch NAME"
    )
    assert api.deploy_count(dev) == 1


def test_branch_argument_names_the_branch(cli: Cli, api: Api, project: Path) -> None:
    dev = api.create_deployment()["name"]
    mapped_project(project, {"develop": dev})
    body = cli("deploy", project, "--no-parse", "--branch", "develop", "--json").ok().json()
    assert (body["deployment"], body["branch_source"], body["seq"]) == (dev, "argument", 1)


def test_refusals_change_nothing(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    cli("deploy", project, "--no-parse", "--deployment", name, "--branch", "auto").usage_error(
        "either --deployment", "not both"
    )
    cli("deploy", project).usage_error("--deployment NAME", "--branch auto")
    # No branch map at all: a set-up mistake, not a no-op.
    cli("deploy", project, "--no-parse", "--branch", "main").failed(
        "maps no branches", "deployments:", "--deployment NAME"
    )
    # Mapped to a deployment that does not exist.
    mapped_project(project, {"main": unique("missing")})
    cli("deploy", project, "--no-parse", "--branch", "main").failed("does not exist")
    cli("deploy", project, "--no-parse", "--branch", " ").failed("--branch needs a branch name")
    write(project, "dagship.yaml", "deployments:\n  main: [1, 2]\n")
    cli("deploy", project, "--no-parse", "--branch", "main").failed(
        "deployments.main must name a deployment"
    )
    cli("deploy", project, "--no-parse", "-d", name, "--full", "--dags").usage_error(
        "cannot be used together"
    )
    assert api.deploy_count(name) == 0


def test_full_deploys_both_trees_even_if_one_is_unchanged(
    cli: Cli, api: Api, project: Path
) -> None:
    name = api.create_deployment()["name"]
    first = cli("deploy", project, "--no-parse", "-d", name, "--json").ok().json()
    write(project, "dags/extra.py", f"# {name}\n")
    body = cli("deploy", project, "--no-parse", "-d", name, "--full", "--json").ok().json()
    assert body["kind"] == "full" and body["seq"] == 2
    assert body["project_version"] == first["project_version"]
    record = api.get(f"/deploys/{body['id']}").json()
    assert record["kind"] == "full"
    again = cli("deploy", project, "--no-parse", "-d", name, "--full", "--json").ok().json()
    assert again["unchanged"] is True and again["deployed"] is False
    assert api.deploy_count(name) == 2
