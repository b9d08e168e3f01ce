"""`dagship deploy` checks the project before uploading: parse, and the tests with --pytest.

Real server, real CLI, real Airflow 3.3.2 through `--local` (the interpreter running the tests):
building an environment is not the point here and is covered by the environment tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Api, Cli, Result, Server, unique, write

pytest.importorskip("airflow")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite server: what is checked happens in the client, and the server stores the
    checks alike on both databases (tests/server/deploys_test.py)."""
    srv = Server(tmp_path_factory.mktemp("home-gate"), "sqlite")
    try:
        yield srv.start()
    finally:
        srv.close()


class CheckingCli(Cli):
    """The CLI with a parse cache private to the test (not the user's ~/.cache/dagship)."""

    def __init__(self, url: str | None, token: str | None, cache: Path) -> None:
        super().__init__(url, token)
        self.cache = cache

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # No parse server left waiting after the test.
        own = {"DAGSHIP_CACHE_DIR": str(self.cache), "DAGSHIP_PARSE_SERVER_IDLE": "0"}
        return super().env({**own, **(extra or {})})

    def as_token(self, token: str | None) -> Cli:
        return CheckingCli(self.url, token, self.cache)


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    return CheckingCli(server.url, server.admin_token, tmp_path / "cache")


BROKEN_DAG = "from airflow.sdk import dag\n\nx = (1,\n"  # a syntax error on line 3
FAILING_TEST = "def test_the_numbers():\n    assert 1 + 1 == 3, 'arithmetic broke'\n"


def deploy(cli: Cli, project: Path, name: str, *flags: str) -> Result:
    return cli("deploy", project, "--deployment", name, *flags)


def checks(api: Api, name: str) -> dict[str, Any]:
    return dict(api.deploys(name)[0]["checks"])


def test_a_broken_dag_blocks_the_deploy_and_no_parse_lets_it_through(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    name = unique("gate")
    api.create_deployment(name)
    write(project, "dags/broken.py", BROKEN_DAG)
    blobs = server.blob_count()

    blocked = deploy(cli, project, name, "--local").failed(
        "deploy blocked", "1 DAG file failed to parse", "--no-parse"
    )
    assert "broken.py" in blocked.out, "the parse report names the file"
    assert "SyntaxError" in blocked.out
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs, "a blocked deploy uploads nothing"

    as_json = deploy(cli, project, name, "--local", "--json")
    assert as_json.code == 1
    report = as_json.json()
    assert report["blocked"] is True and report["kind"] == "full"
    assert report["checks"]["parse"] == "failed"
    assert report["parse"]["ok"] is False and report["parse"]["error_count"] == 1
    [failed] = [f for f in report["parse"]["files"] if f["errors"]]
    assert failed["path"] == "dags/broken.py"
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs

    done = deploy(cli, project, name, "--no-parse", "--json").ok().json()
    assert done["seq"] == 1
    assert done["checks"] == {"parse": "skipped", "pytest": "not-run"}
    inspected = cli("deploys", "inspect", done["id"]).ok()
    assert "parse skipped, pytest not-run" in inspected.out


def test_a_clean_project_deploys_with_parse_passed(cli: Cli, api: Api, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    human = deploy(cli, project, name, "--local").ok()
    assert "checks      parse passed, pytest not-run" in human.out
    assert checks(api, name) == {"parse": "passed", "pytest": "not-run"}
    # A project change is parsed too: the DAGs may import what changed.
    write(project, "include/helpers.py", f"def helper() -> int:\n    return 2  # {name}\n")
    out = deploy(cli, project, name, "--local", "--json").ok().json()
    assert (out["kind"], out["checks"]["parse"]) == ("project", "passed")


def test_dag_only_deploys_are_parsed_too(cli: Cli, api: Api, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    deploy(cli, project, name, "--local").ok()

    # Only dags/ changed: a DAG-only deploy, parsed by default and blocked.
    write(project, "dags/broken.py", BROKEN_DAG)
    blocked = deploy(cli, project, name, "--local", "--json")
    assert blocked.code == 1, blocked.err
    report = blocked.json()
    assert (report["kind"], report["checks"]["parse"]) == ("dags", "failed")
    # Incremental: the unchanged DAG files' results come from the cache of the first deploy.
    cached = {f["path"] for f in report["parse"]["files"] if f["cached"]}
    assert cached == {f"dags/dag_{i}.py" for i in range(3)}
    assert api.deploy_count(name) == 1

    # --no-parse lets it through, unchecked, and records it.
    out = deploy(cli, project, name, "--no-parse", "--json").ok().json()
    assert out["kind"] == "dags"
    assert out["checks"] == {"parse": "skipped", "pytest": "not-run"}

    (project / "dags/broken.py").unlink()
    fixed = deploy(cli, project, name, "--local", "--dags", "--json").ok().json()
    assert (fixed["kind"], fixed["checks"]["parse"]) == ("dags", "passed")


def test_failing_tests_block_with_pytest(cli: Cli, api: Api, server: Server, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    write(project, "tests/test_numbers.py", FAILING_TEST)
    blobs = server.blob_count()
    blocked = deploy(cli, project, name, "--local", "--pytest").failed(
        "deploy blocked", "tests failed", "pytest exit code 1", "dagship test"
    )
    assert "arithmetic broke" in blocked.err, "pytest's output is shown"
    assert "1 failed" in blocked.err
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs
    # The tests run when parsing is skipped, too.
    deploy(cli, project, name, "--local", "--pytest", "--no-parse").failed("tests failed")
    assert api.deploy_count(name) == 0

    write(project, "tests/test_numbers.py", "def test_the_numbers():\n    assert 1 + 1 == 2\n")
    out = deploy(cli, project, name, "--local", "--pytest", "--json").ok().json()
    assert out["checks"] == {"parse": "passed", "pytest": "passed"}
    assert api.deploys(name)[0]["checks"] == {"parse": "passed", "pytest": "passed"}


def test_pytest_without_tests_blocks_with_a_clear_error(cli: Cli, api: Api, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    assert not (project / "tests").exists()
    result = deploy(cli, project, name, "--local", "--no-parse", "--pytest", "--json")
    result.failed("deploy blocked", "tests could not run", "no tests/ folder", "--pytest")
    assert result.json()["checks"] == {"parse": "skipped", "pytest": "failed"}
    assert api.deploy_count(name) == 0


def test_no_environment_means_a_clear_error_and_no_deploy(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    name = unique("gate")
    api.create_deployment(name)
    write(project, "Dockerfile", "FROM registry.example.com/our-own-airflow:7\n")
    blobs = server.blob_count()
    deploy(cli, project, name).failed(
        "deploy blocked", "checks could not run", "airflow_version", "--local", "--no-parse"
    )
    assert api.deploy_count(name) == 0
    assert server.blob_count() == blobs
    out = deploy(cli, project, name, "--no-parse", "--json").ok().json()
    assert out["checks"]["parse"] == "skipped"


def test_a_refused_deploy_fails_before_any_check(cli: Cli, api: Api, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    author = cli.as_token(api.create_token("dag-author", deployment=name))
    write(project, "dags/broken.py", BROKEN_DAG)
    # A full deploy needs operator: that is the error, not the broken file.
    result = deploy(author, project, name, "--local").failed("operator")
    assert "deploy blocked" not in result.err and "broken.py" not in result.out


def test_unchanged_deploys_run_no_check(cli: Cli, api: Api, project: Path) -> None:
    name = unique("gate")
    api.create_deployment(name)
    # An image dagship cannot map to an Airflow version: any check would fail at once.
    write(project, "Dockerfile", "FROM registry.example.com/our-own-airflow:7\n")
    deploy(cli, project, name, "--no-parse").ok()
    again = deploy(cli, project, name, "--json").ok().json()
    assert again["unchanged"] is True and again["seq"] == 1


def test_preview_deploys_are_checked_like_deploys(
    cli: Cli, api: Api, server: Server, project: Path
) -> None:
    source = unique("gate")
    api.create_deployment(source)
    branch = "feature/gate check"
    cli("preview", "create", "--from", source, "--name", branch).ok()
    write(project, "dags/broken.py", BROKEN_DAG)
    blobs = server.blob_count()
    blocked = cli("preview", "deploy", "--name", branch, project, "--local").failed(
        "deploy blocked", "1 DAG file failed to parse"
    )
    assert "broken.py" in blocked.out
    assert server.blob_count() == blobs, "a blocked preview deploy uploads nothing"
    done = cli("preview", "deploy", "--name", branch, project, "--no-parse", "--json").ok().json()
    assert done["checks"] == {"parse": "skipped", "pytest": "not-run"}
