"""A deployment's Airflow URL, and `--wait` without a reachable Airflow (no Airflow needed)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Api, Cli, assert_error, free_port, unique


def test_airflow_url_is_set_shown_and_cleared(cli: Cli, api: Api) -> None:
    name = unique()
    created = (
        cli("deployment", "create", name, "--airflow-url", "http://airflow.example:8080/", "--json")
        .ok()
        .json()
    )
    assert created["airflow_url"] == "http://airflow.example:8080"
    assert created["airflow_bundle"] == f"dagship-{name}"
    assert "airflow.example" in cli("deployment", "inspect", name).ok().out
    listed = {d["name"]: d for d in cli("deployment", "list", "--json").ok().json()}
    assert listed[name]["airflow_url"] == "http://airflow.example:8080"

    updated = (
        cli("deployment", "update", name, "--airflow-url", "https://af.example", "--json")
        .ok()
        .json()
    )
    assert updated["airflow_url"] == "https://af.example"
    assert updated["description"] == ""  # other fields untouched
    renamed = (
        cli("deployment", "update", name, "--airflow-bundle", "my_bundle", "--json").ok().json()
    )
    assert renamed["airflow_url"] == "https://af.example"
    assert renamed["airflow_bundle"] == "my_bundle"
    cleared = cli("deployment", "update", name, "--no-airflow-url", "--json").ok().json()
    assert cleared["airflow_url"] is None
    assert api.get(f"/deployments/{name}").json()["airflow_url"] is None


def test_bad_airflow_url_is_refused(api: Api) -> None:
    r = api.post("/deployments", json={"name": unique(), "airflow_url": "ftp://x"})
    assert_error(r, 422, "invalid")
    name = api.create_deployment()["name"]
    assert_error(api.patch(f"/deployments/{name}", json={"airflow_url": "not a url"}), 422)


def test_wait_without_airflow_url_says_so(cli: Cli, api: Api, project: Path) -> None:
    name = api.create_deployment()["name"]
    # DAGs only: a project deploy would first wait for agents (tests/cli/agents_test.py).
    result = cli("deploy", project, "-d", name, "--dags", "--no-parse", "--wait", "--json")
    assert result.code == 1
    body = result.json()
    assert body["seq"] == 1 and body["wait"]["state"] == "no_airflow"
    assert "--airflow-url" in result.err
    status = api.get(f"/deploys/{body['id']}/airflow").json()
    assert status["state"] == "no_airflow" and status["done"] is True
    cli("deploys", "wait", body["id"]).failed("no Airflow URL", "--airflow-url")


def test_unreachable_airflow_is_a_clear_timeout(cli: Cli, api: Api, project: Path) -> None:
    name = unique()
    cli("deployment", "create", name, "--airflow-url", f"http://127.0.0.1:{free_port()}").ok()
    deployed = cli("deploy", project, "-d", name, "--dags", "--no-parse", "--json").ok().json()
    r = api.get(f"/deploys/{deployed['id']}/airflow")
    assert r.status_code == 200, r.text
    status = r.json()
    assert (status["state"], status["reachable"], status["done"]) == ("waiting", False, False)
    assert "cannot reach Airflow" in status["detail"]
    assert status["files"]["expected"] == 3  # the project's three DAG files
    result = cli("deploys", "wait", deployed["id"], "--timeout", "1")
    result.failed("timed out", "cannot reach Airflow")


def test_airflow_status_respects_deployment_binding(api: Api, project: Path, cli: Cli) -> None:
    name = api.create_deployment()["name"]
    deployed = cli("deploy", project, "-d", name, "--no-parse", "--json").ok().json()
    other = api.create_deployment()["name"]
    bound = api.with_token(api.create_token("viewer", deployment=other))
    assert_error(bound.get(f"/deploys/{deployed['id']}/airflow"), 403, "forbidden")
    assert_error(api.get("/deploys/dpl_0000000000000000/airflow"), 404, "not_found")


def test_airflow_credentials_are_set_from_files_shown_as_set_and_forgotten(
    cli: Cli, api: Api, tmp_path: Path
) -> None:
    name = unique()
    token_file = tmp_path / "airflow-token"
    token_file.write_text("tok-cli-2468\n")
    created = cli(
        "deployment", "create", name, "--airflow-url", "http://airflow.example:8080",
        "--airflow-token-file", token_file, "--json",
    ).ok()  # fmt: skip
    assert "tok-cli-2468" not in created.out
    assert created.json()["airflow_credentials_set"] is True
    shown = cli("deployment", "inspect", name).ok().out
    assert "Airflow credentials" in shown and "set (never shown)" in shown
    assert "tok-cli-2468" not in shown

    password = tmp_path / "password"
    password.write_text("pw-cli-1357")
    cli(
        "deployment", "update", name, "--airflow-username", "ops",
        "--airflow-password-file", password,
    ).ok()  # fmt: skip
    cli("deployment", "update", name, "--airflow-token-file", token_file,
        "--airflow-username", "ops").usage_error("--airflow-token-file")  # fmt: skip
    cli("deployment", "update", name, "--airflow-password-file", password).usage_error(
        "--airflow-username"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cli("deployment", "update", name, "--airflow-token-file", empty).usage_error("empty")
    assert api.get(f"/deployments/{name}").json()["airflow_credentials_set"] is True
    forgot = cli("deployment", "update", name, "--no-airflow-credentials", "--json").ok().json()
    assert forgot["airflow_credentials_set"] is False
