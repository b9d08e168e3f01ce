"""Deploy types come from content, never from git history: real repositories, real pushes.

Each scenario pushes to a bare "remote"; a CI job then clones the pushed branch (detached
HEAD, GitHub Actions variables) and runs `dagship deploy --branch auto` against a real server.
The expected type is what differs between the tree and the deployment's current deploy,
which git-diff based tools get wrong after squashes, force-pushes and multi-commit pushes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Api, Cli, Server, git, make_project, unique, write

_jobs = itertools.count()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("home"))
    try:
        yield server.start()
    finally:
        server.close()


class Repo:
    """A bare remote and a developer's clone holding an Airflow project."""

    prod = ""  # the deployment main deploys to
    dev = ""  # the deployment feature/* branches deploy to

    def __init__(self, root: Path, server: Server, branches: dict[str, str]) -> None:
        self.root = root
        self.api: Api = server.api()
        self.cli = Cli(server.url, server.admin_token)
        self.remote = root / "remote.git"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.remote))
        self.work = root / "work"
        git(root, "clone", "-q", str(self.remote), str(self.work))
        make_project(self.work)
        mapping = "".join(f"  {branch!r}: {name}\n" for branch, name in branches.items())
        write(self.work, "dagship.yaml", f"deployments:\n{mapping}")
        self.commit("Start the project")
        self.push("main")

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for rel, text in (files or {}).items():
            write(self.work, rel, text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, branch: str, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", branch)

    def ci_deploy(self, branch: str) -> dict[str, Any]:
        """What a CI job for a push to ``branch`` does: a fresh clone, detached HEAD."""
        job = self.root / f"ci-{next(_jobs)}"
        git(self.root, "clone", "-q", "--branch", branch, str(self.remote), str(job))
        git(job, "checkout", "-q", "--detach")
        env = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": f"refs/heads/{branch}",
            "GITHUB_REF_NAME": branch,
            "GITHUB_SHA": git(job, "rev-parse", "HEAD"),
        }
        result = (
            self.cli("deploy", job, "--no-parse", "--branch", "auto", "--json", env=env).ok().json()
        )
        return dict(result)


def kind_of(result: dict[str, Any]) -> str:
    return "none" if result["unchanged"] else str(result["kind"])


def dag_change(tag: str) -> dict[str, str]:
    return {"dags/dag_0.py": f"# changed: {tag}\n" + unique()}


def requirements_change(tag: str) -> dict[str, str]:
    return {"requirements.txt": f"pendulum>=3\n# {tag} {unique()}\n"}


@pytest.fixture
def repo(tmp_path: Path, srv: Server) -> Repo:
    prod, dev = unique("prod"), unique("dev")
    api = srv.api()
    api.create_deployment(prod)
    api.create_deployment(dev)
    repo = Repo(tmp_path, srv, {"main": prod, "feature/*": dev})
    repo.prod, repo.dev = prod, dev
    first = repo.ci_deploy("main")
    assert (kind_of(first), first["deployment"]) == ("full", prod)
    return repo


def test_push_touching_only_dags(repo: Repo) -> None:
    repo.commit("Change a DAG", dag_change("only dags"))
    repo.push("main")
    assert kind_of(repo.ci_deploy("main")) == "dags"


def test_push_touching_requirements(repo: Repo) -> None:
    repo.commit("Pin pendulum", requirements_change("requirements"))
    repo.push("main")
    assert kind_of(repo.ci_deploy("main")) == "project"


def test_three_commits_in_one_push(repo: Repo) -> None:
    # The last commit alone touches only include/: a diff of HEAD~1..HEAD would say "project".
    repo.commit("Change a DAG", dag_change("one of three"))
    repo.commit("Pin pendulum", requirements_change("two of three"))
    repo.commit("Touch include", {"include/helpers.py": f"# {unique()}\n"})
    repo.push("main")
    result = repo.ci_deploy("main")
    assert kind_of(result) == "full"
    assert result["seq"] == 2


def test_squash_merge(repo: Repo) -> None:
    # The feature branch changes a DAG, then reverts it, and pins a requirement: the squashed
    # commit changes only requirements.txt, so only the project is deployed.
    git(repo.work, "checkout", "-q", "-b", "feature/squash")
    original = (repo.work / "dags/dag_0.py").read_text()
    repo.commit("Try a DAG change", dag_change("to revert"))
    repo.commit("Pin pendulum", requirements_change("squash"))
    repo.commit("Revert the DAG change", {"dags/dag_0.py": original})
    git(repo.work, "checkout", "-q", "main")
    git(repo.work, "merge", "-q", "--squash", "feature/squash")
    repo.commit("Pin pendulum (#12)")
    assert len(git(repo.work, "log", "--format=%H", "HEAD~1..HEAD").split()) == 1
    repo.push("main")
    assert kind_of(repo.ci_deploy("main")) == "project"


def test_force_push(repo: Repo) -> None:
    base = git(repo.work, "rev-parse", "HEAD")
    repo.commit("Change a DAG", dag_change("before force-push"))
    repo.push("main")
    assert kind_of(repo.ci_deploy("main")) == "dags"

    # Amending only the message: new commit, same tree, nothing to deploy.
    git(repo.work, "commit", "-q", "--amend", "-m", "Change a DAG (reworded)")
    repo.push("main", force=True)
    assert kind_of(repo.ci_deploy("main")) == "none"

    # History rewritten: the DAG change is dropped and requirements change instead. Both
    # trees now differ from what runs (the deployed DAG change is gone).
    git(repo.work, "reset", "-q", "--hard", base)
    repo.commit("Pin pendulum instead", requirements_change("after force-push"))
    repo.push("main", force=True)
    result = repo.ci_deploy("main")
    assert kind_of(result) == "full"
    dags_now = repo.api.deploys(result["deployment"])[0]["dags_version"]
    assert dags_now == repo.api.deploys(result["deployment"])[-1]["dags_version"], (
        "the DAG bundle is back to the first deploy's"
    )


def test_first_push_of_a_new_branch(repo: Repo) -> None:
    dev = repo.dev
    # dev runs what main runs; the new branch changes one DAG. A git-based tool has no
    # "before" commit for a new branch; the content says: DAGs only.
    repo.cli("deploy", repo.work, "--no-parse", "--deployment", dev).ok()
    git(repo.work, "checkout", "-q", "-b", "feature/new")
    repo.commit("Change a DAG", dag_change("new branch"))
    repo.push("feature/new")
    result = repo.ci_deploy("feature/new")
    assert (result["deployment"], result["branch"], kind_of(result)) == (
        dev,
        "feature/new",
        "dags",
    )
    # A second new branch with no change at all: nothing to deploy.
    git(repo.work, "checkout", "-q", "-b", "feature/same")
    repo.push("feature/same")
    assert kind_of(repo.ci_deploy("feature/same")) == "none"


def test_tag_build_records_no_branch(repo: Repo) -> None:
    # A GitHub Actions build of a pushed tag: a clone at the tag (detached HEAD) whose
    # variables name the tag. A tag is not a branch: the deploy records the commit, no branch.
    repo.commit("Change a DAG", dag_change("tagged"))
    repo.push("main")
    git(repo.work, "tag", "v1.2")
    git(repo.work, "push", "-q", "origin", "v1.2")
    job = repo.root / "ci-tag"
    git(repo.root, "clone", "-q", "--branch", "v1.2", str(repo.remote), str(job))
    sha = git(job, "rev-parse", "HEAD")
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/tags/v1.2",
        "GITHUB_REF_NAME": "v1.2",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_SHA": sha,
    }
    result = repo.cli(
        "deploy", job, "--no-parse", "--deployment", repo.prod, "--json", env=env
    ).ok()
    record = repo.api.get(f"/deploys/{result.json()['id']}").json()
    assert (record["git_sha"], record["git_branch"], record["origin"]) == (sha, None, "ci")
    assert record["git_message"] == "Change a DAG"
