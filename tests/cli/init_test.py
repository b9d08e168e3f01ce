"""`dagship init`: an Astro-style project, never overwriting, whose tests pass and which deploys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dagship.project.scaffold import AIRFLOW_VERSION, EXAMPLE_FILES
from tests.helpers import Cli, clean_env, write


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def run_dag_tests(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The project's own tests/ under pytest, with Airflow, in a throwaway AIRFLOW_HOME."""
    env = {**clean_env(), "AIRFLOW_HOME": str(tmp_path / "airflow-home")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_init_writes_an_astro_style_project(tmp_path: Path) -> None:
    project = tmp_path / "new" / "project"
    out = Cli(None, None).run("init", project, "--json").ok().json()
    assert sorted(out["written"]) == sorted(EXAMPLE_FILES)
    assert files_under(project) == set(EXAMPLE_FILES)
    for folder in ("dags", "include", "plugins", "tests/dags"):
        assert (project / folder).is_dir()
    example = (project / "dags/example_dag.py").read_text()
    assert "from airflow.sdk import dag, task" in example
    assert (project / "Dockerfile").read_text().startswith(f"FROM apache/airflow:{AIRFLOW_VERSION}")
    settings = (project / "airflow_settings.yaml").read_text()
    for key in ("airflow:", "connections: []", "pools: []", "variables: []"):
        assert key in settings
    config = (project / "dagship.yaml").read_text()
    assert f"airflow_version: {AIRFLOW_VERSION}" in config
    assert "deployments:" in config
    assert ".env" in (project / ".gitignore").read_text().splitlines()


def test_init_human_output_lists_the_files(tmp_path: Path) -> None:
    result = Cli(None, None, cwd=tmp_path)("init").ok()
    assert "dags/example_dag.py" in result.out
    assert (tmp_path / "dags/example_dag.py").exists()


def test_init_refuses_an_existing_project_and_never_overwrites(tmp_path: Path) -> None:
    write(tmp_path, "dags/mine.py", "# mine\n")
    write(tmp_path, "requirements.txt", "pandas\n")
    Cli(None, None).run("init", tmp_path).failed("already has a project", "--force")
    assert files_under(tmp_path) == {"dags/mine.py", "requirements.txt"}

    out = Cli(None, None).run("init", tmp_path, "--force", "--json").ok().json()
    assert "requirements.txt" not in out["written"]
    assert "dags/example_dag.py" in out["written"]
    assert (tmp_path / "requirements.txt").read_text() == "pandas\n"
    assert (tmp_path / "dags/mine.py").read_text() == "# mine\n"

    (tmp_path / "dags/example_dag.py").write_text("# edited\n")
    again = Cli(None, None).run("init", tmp_path, "--force", "--json").ok().json()
    assert again["written"] == []
    assert (tmp_path / "dags/example_dag.py").read_text() == "# edited\n"


def test_init_refuses_a_file(tmp_path: Path) -> None:
    target = write(tmp_path, "file.txt", "x")
    Cli(None, None).run("init", target).failed("not a folder")


def test_generated_dag_tests_pass_with_airflow(tmp_path: Path) -> None:
    pytest.importorskip("airflow")
    project = tmp_path / "project"
    Cli(None, None).run("init", project).ok()
    result = run_dag_tests(project, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout

    # They catch what they are for: a DAG file that does not import.
    write(project, "dags/broken.py", "from airflow.sdk import dag\nimport no_such_module\n")
    result = run_dag_tests(project, tmp_path)
    assert result.returncode == 1
    assert "broken.py" in result.stdout
    assert "no_such_module" in result.stdout


def test_the_scaffold_deploys(tmp_path: Path, cli: Cli) -> None:
    from tests.helpers import unique

    project = tmp_path / "project"
    Cli(None, None).run("init", project).ok()
    name = unique("init")
    cli("deployment", "create", name).ok()
    # Parsed with the test interpreter's Airflow, a private cache and no parse server left.
    checking = {"DAGSHIP_CACHE_DIR": str(tmp_path / "cache"), "DAGSHIP_PARSE_SERVER_IDLE": "0"}
    out = cli("deploy", project, "-d", name, "--local", "--json", env=checking).ok().json()
    assert out["kind"] == "full"
    assert out["checks"]["parse"] == "passed"  # the scaffold passes the parse check
    assert out["seq"] == 1
    deployed = cli("deploys", "inspect", out["id"], "--json").ok().json()
    assert deployed["dags_files"] == 2  # example_dag.py and .airflowignore
    again = cli("deploy", project, "--deployment", name, "--json").ok().json()
    assert again["unchanged"] is True
