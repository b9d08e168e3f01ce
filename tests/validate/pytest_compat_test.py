"""`dagship test` runs an Astro project's tests unchanged on Airflow 3.2 and later, with test
ids relative to the project.

tests/validate/astro/test_dag_example.py.txt is an exact copy of the test `astro dev init`
writes into every Astro project for Airflow 3 (astronomer/astro-cli,
airflow/include/airflow3/dagexampletest.py at 1b14bf1a06de4ac00bf57e1635444a2c9acb1643,
Apache License 2.0); it calls `DagBag(include_examples=False)`, which Airflow 3.2 removed, and
names files relative to AIRFLOW_HOME. It is stored as .txt so that this suite does not collect
it and the linters leave it as it is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dagship.validate import pytest_compat
from tests.helpers import Cli, write

pytest.importorskip("airflow")

ASTRO_TEST = Path(__file__).with_name("astro") / "test_dag_example.py.txt"
GOOD_DAG = """\
from datetime import datetime

from airflow.sdk import DAG

with DAG("good", schedule=None, start_date=datetime(2026, 1, 1), tags=["team"],
         default_args={"retries": 2}):
    pass
"""

cli = Cli(None, None)


def astro_project(tmp_path: Path) -> Path:
    """An Astro project for Airflow 3.3 (the Runtime release pinned in dagship.yaml), with
    Astro's own example test, a good DAG and a broken one."""
    project = tmp_path / "project"
    write(project, "Dockerfile", "FROM astrocrpublic.azurecr.io/runtime:3.3-2\n")
    write(project, "dagship.yaml", "airflow_version: 3.3.2\n")
    write(project, "tests/dags/test_dag_example.py", ASTRO_TEST.read_text())
    write(project, "dags/good.py", GOOD_DAG)
    write(project, "dags/broken.py", "from airflow.sdk import DAG\nimport no_such_module\n")
    return project


def test_astros_example_test_runs_unchanged_in_the_built_environment(
    tmp_path: Path, shared_cache: Path
) -> None:
    project = astro_project(tmp_path)
    env = {"DAGSHIP_CACHE_DIR": str(shared_cache)}
    args = ("test", project, "--json", "--", "-v", "-p", "no:cacheprovider")
    result = cli(*args, env=env)
    summary = result.json()
    assert summary["airflow_version"] == "3.3.2"
    assert Path(summary["environment"]).is_relative_to(shared_cache)
    assert result.code == 1, result.err
    # Collected and run, with ids relative to the project, as in an Astro image.
    assert "test_file_imports[dags/broken.py] FAILED" in result.err
    assert "test_dag_tags[dags/good.py] PASSED" in result.err
    assert "test_dag_retries[dags/good.py] PASSED" in result.err
    assert "Exception: dags/broken.py failed to import" in result.err
    assert "1 failed, 3 passed" in result.err
    assert "../" not in result.err
    assert (project / "tests/dags/test_dag_example.py").read_text() == ASTRO_TEST.read_text()

    # Without dagship's plugin, Airflow 3.3 refuses the test at collection: the plugin is
    # what makes it run.
    bare = cli(*args, "-p", "no:dagship_pytest_compat", env=env)
    assert bare.code == 2, bare.err
    assert "unexpected keyword argument 'include_examples'" in bare.err

    (project / "dags/broken.py").unlink()
    fixed = cli(*args, env=env).ok()
    assert "3 passed" in fixed.err


CONFTEST_FIRST = """\
import os

# Set before Airflow is imported: dagship's plugin must not have imported it already.
os.environ["AIRFLOW__CORE__PARALLELISM"] = "3"
"""

READS_SETTINGS = """\
import sys

from airflow.configuration import conf
from airflow.models import DagBag


def test_settings_of_the_conftest_apply():
    assert conf.getint("core", "parallelism") == 3


def test_dagbag_takes_include_examples():
    assert "airflow.dag_processing.dagbag" in sys.modules or "airflow.models.dagbag" in sys.modules
    bag = DagBag(include_examples=False)
    assert sorted(bag.dag_ids) == ["good"]
    bag = DagBag(include_examples=True)  # accepted and ignored: no examples here
    assert sorted(bag.dag_ids) == ["good"]
"""


def test_the_plugin_patches_dagbag_only_when_the_tests_import_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "dags/good.py", GOOD_DAG)
    write(project, "tests/conftest.py", CONFTEST_FIRST)
    write(project, "tests/test_settings.py", READS_SETTINGS)
    result = cli("test", project, "--local", "--", "-q", "-p", "no:cacheprovider")
    assert result.code == 0, result.out + result.err
    assert "2 passed" in result.out


def test_installing_the_plugin_does_not_import_airflow(tmp_path: Path) -> None:
    """In a fresh interpreter: install() imports nothing of Airflow, and the DagBag that the
    tests import afterwards takes include_examples (Airflow 3.3 dropped it)."""
    shutil.copyfile(pytest_compat.__file__, tmp_path / "pytest_compat.py")
    code = (
        "import sys, inspect\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import pytest_compat\n"
        "pytest_compat.install()\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'imported'\n"
        "from airflow.models import DagBag\n"
        "assert 'include_examples' in inspect.signature(DagBag).parameters\n"
        "DagBag(include_examples=False, collect_dags=False)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
