"""Exit codes CI can trust: non-zero whenever what was asked did not happen, with the reason
on the last line of stderr; zero only for success or a no-op the output states plainly."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ServerFactory
from tests.helpers import Cli, Result, free_port, make_project, write


def last_line(result: Result) -> str:
    lines = result.err.strip().splitlines()
    assert lines, f"no reason on stderr (exit {result.code})"
    return lines[-1]


def test_upload_refused_by_the_server_fails_and_deploys_nothing(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    srv = make_server(env={"DAGSHIP_MAX_BLOB_SIZE": "1024"})
    api = srv.api()
    name = api.create_deployment()["name"]
    project = make_project(tmp_path / "project")
    write(project, "include/big.bin", b"x" * 4096)
    cli = Cli(srv.url, srv.admin_token)
    for args in ((), ("--json",), ("--branch", "main")):
        if args[:1] == ("--branch",):
            write(project, "dagship.yaml", f"deployments:\n  main: {name}\n")
            result = cli("deploy", project, "--no-parse", *args)
        else:
            result = cli("deploy", project, "-d", name, "--no-parse", *args)
        result.failed("include/big.bin")
        assert last_line(result).startswith("Error:")
        assert '"seq"' not in result.out, "no deploy reported"
    assert api.deploy_count(name) == 0


def test_unreachable_server_fails_with_what_to_do(project: Path) -> None:
    cli = Cli(f"http://127.0.0.1:{free_port()}", "tok")
    result = cli("deploy", project, "-d", "prod")
    result.failed("cannot reach the dagship server")
    assert "DAGSHIP_URL" in last_line(result)
    write(project, "dagship.yaml", "deployments:\n  main: prod\n")
    branch = cli("deploy", project, "--branch", "main", "--json")
    branch.failed("cannot reach")
    assert branch.out == ""


def test_bad_token_fails(make_server: ServerFactory, project: Path) -> None:
    srv = make_server()
    name = srv.api().create_deployment()["name"]
    result = Cli(srv.url, "not-a-token")("deploy", project, "-d", name)
    assert result.code == 1 and last_line(result).startswith("Error:")
    assert "token" in last_line(result).lower()
    assert srv.api().deploy_count(name) == 0


def test_outputs_without_a_deploy_result_fails(tmp_path: Path) -> None:
    cli = Cli(None, None)
    missing = cli("ci", "outputs", tmp_path / "none.json", "--github-output", tmp_path / "out")
    missing.failed("does not exist", "--json")
    broken = tmp_path / "broken.json"
    broken.write_text("Deployed ...\n")
    cli("ci", "outputs", broken, "--github-output", tmp_path / "out").failed("is not the JSON")
    assert not (tmp_path / "out").exists()
    good = tmp_path / "good.json"
    good.write_text('{"id": "dpl_1", "seq": 3, "deployment": "prod", "unchanged": false}')
    cli("ci", "outputs", good).failed("GITHUB_OUTPUT is not set", "--github-output")
    body = cli("ci", "outputs", good, "--github-output", tmp_path / "out", "--json").ok().json()
    assert body["deploy-id"] == "dpl_1" and body["seq"] == "3" and body["deployed"] == "true"
    assert "deploy-id<<" in (tmp_path / "out").read_text()


def test_a_missing_token_says_where_the_cli_looked(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    srv = make_server()
    home = tmp_path / "other-home"  # a new terminal with a DAGSHIP_HOME the server did not use
    result = Cli(srv.url, None)("deployment", "list", env={"DAGSHIP_HOME": str(home)})
    assert result.code == 1
    reason = last_line(result)
    assert f"{home / 'admin-token'} (from DAGSHIP_HOME) does not exist" in reason
    assert "set DAGSHIP_API_TOKEN, pass --token, or set DAGSHIP_HOME" in reason
    # The server's own home has the admin token: pointing DAGSHIP_HOME there works.
    Cli(srv.url, None)("deployment", "list", env={"DAGSHIP_HOME": str(srv.home)}).ok()


def test_an_explicitly_empty_token_is_an_error_not_the_admin_token(
    make_server: ServerFactory,
) -> None:
    srv = make_server()
    env = {"DAGSHIP_HOME": str(srv.home)}  # the admin token file is there to fall back on
    result = Cli(srv.url, None)("deployment", "list", "--token", "", env=env)
    assert result.code == 1
    assert "--token is empty" in last_line(result)
    assert result.out == ""
