"""`dagship test`: the project's tests under pytest, importable as Airflow sees the project.

These use `--local` (the interpreter running the tests, which has Airflow 3.3.2): building an
environment is covered by the environment tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import Cli, write

pytest.importorskip("airflow")

cli = Cli(None, None)


def scaffold(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    cli("init", project).ok()
    return project


def test_the_scaffolded_astro_tests_pass_unchanged(tmp_path: Path) -> None:
    project = scaffold(tmp_path)
    before = (project / "tests/dags/test_dag_example.py").read_text()
    result = cli("test", project, "--local").ok()
    assert "3 passed" in result.out, result.out
    assert (project / "tests/dags/test_dag_example.py").read_text() == before


def test_a_failing_test_exits_1_with_pytests_output(tmp_path: Path) -> None:
    project = scaffold(tmp_path)
    write(
        project,
        "tests/test_numbers.py",
        "def test_sum():\n    total = 1 + 1\n    assert total == 3, 'arithmetic broke'\n",
    )
    result = cli("test", project, "--local")
    assert result.code == 1, result.out + result.err
    assert "1 failed, 3 passed" in result.out
    assert "arithmetic broke" in result.out
    assert "test_numbers.py" in result.out


def test_the_dag_integrity_test_catches_a_broken_dag(tmp_path: Path) -> None:
    project = scaffold(tmp_path)
    write(project, "dags/broken.py", "from airflow.sdk import dag\nimport no_such_module\n")
    result = cli("test", project, "--local")
    assert result.code == 1
    assert "broken.py" in result.out and "no_such_module" in result.out


IMPORTS_TEST = """\
import os
import sys
from pathlib import Path

from airflow.configuration import conf
from airflow.models import DagBag

import include.helpers
import shared_tasks
import my_plugin


def test_project_is_importable_as_airflow_sees_it():
    assert include.helpers.VALUE == "include"
    assert shared_tasks.VALUE == "dags folder"
    assert my_plugin.VALUE == "plugins"
    assert Path.cwd() == Path(__file__).resolve().parents[1]


def test_a_throwaway_airflow_reads_the_projects_dags():
    project = Path(__file__).resolve().parents[1]
    assert Path(conf.get("core", "dags_folder")) == project / "dags"
    assert not conf.getboolean("core", "load_examples")
    # AIRFLOW_HOME is the project, as in an Astro image; Airflow's own files are elsewhere.
    assert Path(os.environ["AIRFLOW_HOME"]) == project
    scratch = Path(os.environ["AIRFLOW_CONFIG"]).parent
    assert "dagship-test-" in scratch.name
    # The user's Airflow settings apply, but not those pointing at their own Airflow.
    assert conf.getint("core", "parallelism") == 7
    assert conf.get("database", "sql_alchemy_conn") == f"sqlite:///{scratch / 'airflow.db'}"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD" not in os.environ
    bag = DagBag()  # the default folder, as the Astro example test uses it
    assert sorted(bag.dags) == ["dag_example"]
    with open(os.environ["REPORT_TO"], "w") as report:
        report.write(str(scratch))
"""


def test_tests_import_the_project_and_get_a_throwaway_airflow(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "include/__init__.py", "")
    write(project, "include/helpers.py", 'VALUE = "include"\n')
    write(project, "dags/shared_tasks.py", 'VALUE = "dags folder"\n')
    write(project, "plugins/my_plugin.py", 'VALUE = "plugins"\n')
    write(
        project,
        "dags/example.py",
        "from datetime import datetime\n\nfrom airflow.sdk import DAG\n\n"
        'with DAG("dag_example", schedule=None, start_date=datetime(2026, 1, 1)):\n    pass\n',
    )
    write(project, "tests/test_imports.py", IMPORTS_TEST)
    users_home = tmp_path / "users-airflow"
    report = tmp_path / "report.txt"
    env = {
        # The user's own Airflow must stay out of the tests.
        "AIRFLOW_HOME": str(users_home),
        "USERS_AIRFLOW_HOME": str(users_home),
        "AIRFLOW__CORE__PARALLELISM": "7",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "elsewhere"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://prod-db.example.com/airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /secrets/prod-db",
        "REPORT_TO": str(report),
    }
    result = cli("test", project, "--local", "--", "-q", "-p", "no:cacheprovider", env=env)
    assert result.code == 0, result.out + result.err
    assert "2 passed" in result.out
    assert not Path(report.read_text()).exists(), "Airflow's throwaway folder is removed"
    assert not users_home.exists()
    assert sorted(p.name for p in project.iterdir()) == ["dags", "include", "plugins", "tests"]


def test_arguments_after_the_double_dash_go_to_pytest(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(
        project, "tests/test_a.py", "def test_alpha():\n    pass\n\n\ndef test_beta():\n    pass\n"
    )
    write(project, "tests/other/test_b.py", "def test_gamma():\n    assert False\n")
    selected = cli("test", project, "--local", "--", "-k", "alpha", "-v").ok()
    assert "test_alpha PASSED" in selected.out
    assert "test_beta" not in selected.out and "1 passed, 2 deselected" in selected.out
    # A path after `--` is pytest's, not the project PATH; then only it runs.
    one_file = Cli(None, None, cwd=project)("test", "--local", "--", "tests/test_a.py").ok()
    assert "2 passed" in one_file.out and "test_b" not in one_file.out
    node = cli("test", project, "--local", "--", "tests/other/test_b.py::test_gamma")
    assert node.code == 1 and "1 failed" in node.out


def test_json_summary_keeps_stdout_for_the_summary(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "tests/test_ok.py", "def test_ok():\n    pass\n")
    result = cli("test", project, "--local", "--json").ok()
    summary = result.json()
    assert summary["exit_code"] == 0 and summary["passed"] is True
    assert summary["environment"] is None  # --local: the current interpreter
    assert summary["airflow_version"].startswith("3.")
    assert "1 passed" in result.err
    write(project, "tests/test_bad.py", "def test_bad():\n    assert False\n")
    failed = cli("test", project, "--local", "--json")
    assert failed.code == 1 and failed.json()["passed"] is False


def test_no_tests_folder_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "dags/dag.py", "# no tests here\n")
    # Said before any environment is built (this image could not even be mapped to one).
    write(project, "Dockerfile", "FROM registry.example.com/our-own-airflow:7\n")
    cli("test", project).failed("no tests/ folder", "dagship init", "--")


def test_unknown_options_must_follow_the_double_dash(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "tests/test_ok.py", "def test_ok():\n    pass\n")
    cli("test", project, "--local", "-x").usage_error("-x")


def test_tests_run_in_the_built_environment(tmp_path: Path, shared_cache: Path) -> None:
    """Without --local the tests run in the deployment's environment (built once per session
    in the shared cache, or reused): its own interpreter, its Airflow."""
    project = scaffold(tmp_path)
    write(
        project,
        "tests/test_where.py",
        "import sys\n\nimport airflow\n\n\ndef test_where():\n"
        "    print('PYTHON', sys.executable, 'AIRFLOW', airflow.__version__)\n",
    )
    env = {"DAGSHIP_CACHE_DIR": str(shared_cache)}
    result = cli("test", project, "--json", "--", "-s", env=env).ok()
    summary = result.json()
    location = Path(summary["environment"])
    assert location.is_relative_to(shared_cache)
    assert summary["python"] != sys.executable
    assert summary["airflow_version"] == "3.3.2"
    assert f"PYTHON {summary['python']} AIRFLOW 3.3.2" in result.err
    assert "4 passed" in result.err
