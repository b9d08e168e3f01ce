"""The hint after a parse error: an Airflow 2 -> 3 move names its replacement, a package the
project's Astro Runtime image ships says so, a missing provider names its package. One test
runs the real `dagship parse` (with the test interpreter's Airflow 3.3.2) on a migrating
Astro project; the others give the hint the messages Python and Airflow write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagship.validate.error_hints import DEFAULT_IMPORT_HINT, argument_hint, import_hint
from tests.validate.conftest import ParseCli, WriteProject, by_path

RUNTIME_12 = "quay.io/astronomer/astro-runtime:12.8.0"
RUNTIME_3 = "astrocrpublic.azurecr.io/runtime:3.1-12"


def project_from(tmp_path: Path, image: str | None) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    if image:
        (project / "Dockerfile").write_text(f"FROM {image}\n")
    return project


def test_a_migrating_astro_project_is_told_what_to_change(
    write_project: WriteProject, parse_cli: ParseCli
) -> None:
    project = write_project(
        {
            "Dockerfile": f"FROM {RUNTIME_12}\n",
            "dags/dummy.py": "from airflow import DAG\nfrom airflow.operators.dummy import X\n",
            "dags/dates.py": "from airflow import DAG\nfrom airflow.utils.dates import days_ago\n",
            "dags/frames.py": "from airflow import DAG\nimport pandas\n",
            "dags/interval.py": """
                from datetime import datetime
                from airflow.sdk import DAG
                with DAG("interval", schedule_interval="@daily", start_date=datetime(2026, 1, 1)):
                    pass
                """,
        }
    )
    report = parse_cli(project, "--local", "--json").json()
    errors = {path: f["errors"][0] for path, f in by_path(report).items()}
    assert errors["dags/dummy.py"]["kind"] == "import"
    assert errors["dags/dummy.py"]["message"] == (
        "ModuleNotFoundError: No module named 'airflow.operators.dummy' "
        "(`airflow.operators.dummy` was removed in Airflow 3: use "
        "`airflow.providers.standard.operators.empty`; DummyOperator is EmptyOperator)"
    )
    assert errors["dags/dates.py"]["message"].endswith(
        "(`airflow.utils.dates.days_ago` was removed in Airflow 3: use "
        "pendulum.today('UTC').add(days=-N), or a fixed start_date)"
    )
    assert (
        f"the Astro Runtime image of the Dockerfile ({RUNTIME_12}) ships `pandas`"
        in (errors["dags/frames.py"]["message"])
    )
    assert errors["dags/interval.py"]["kind"] == "error"
    assert errors["dags/interval.py"]["message"] == (
        "TypeError: DAG.__init__() got an unexpected keyword argument 'schedule_interval' "
        "(`schedule_interval=` was removed in Airflow 3: use `schedule=`)"
    )


@pytest.mark.parametrize(
    ("image", "message", "hint"),
    [
        # What Runtime 12 (Airflow 2) images ship, through astro-sdk-python and the providers.
        (RUNTIME_12, "No module named 'pyarrow'", "ships `pyarrow`"),
        (RUNTIME_12, "No module named 'airflow.providers.google'", "ships `apache-airflow-pro"),
        (RUNTIME_12, "No module named 'google.cloud'", "ships `apache-airflow-providers-google`"),
        (RUNTIME_12, "No module named 'MySQLdb'", "ships `mysqlclient`"),
        # Runtime 3 images ship few packages besides Airflow's: pandas is not one of them.
        (RUNTIME_3, "No module named 'pandas'", DEFAULT_IMPORT_HINT),
        (RUNTIME_3, "No module named 'celery'", "ships `celery`"),
        # Not an Astro image, or no Dockerfile: the general advice, or the provider's name.
        ("apache/airflow:3.1.0", "No module named 'pandas'", DEFAULT_IMPORT_HINT),
        (None, "No module named 'pandas'", DEFAULT_IMPORT_HINT),
        (None, "No module named 'airflow.providers.amazon'", "add `apache-airflow-providers-am"),
        # A name missing from a module that exists is a version question, not a package.
        (RUNTIME_12, "cannot import name 'read_x' from 'pandas' (/x.py)", DEFAULT_IMPORT_HINT),
        # Airflow 2 -> 3 moves come first, whatever the image.
        (RUNTIME_12, "No module named 'airflow.contrib'", "`airflow.contrib` was removed"),
    ],
)
def test_import_hints(tmp_path: Path, image: str | None, message: str, hint: str) -> None:
    assert hint in import_hint(project_from(tmp_path, image), f"ModuleNotFoundError: {message}")


def test_a_moved_name_is_found_from_its_module() -> None:
    message = "ImportError: cannot import name 'Dataset' from 'airflow.datasets' (unknown location)"
    assert import_hint(Path("/nowhere"), message) == (
        "`airflow.datasets.Dataset` was removed in Airflow 3: use `airflow.sdk.Asset`"
    )


def test_argument_hints() -> None:
    operator = (
        "TypeError: Invalid arguments were passed to PythonOperator (task_id: t). Invalid "
        "arguments were:\n**kwargs: {'provide_context': True, 'task_concurrency': 2}"
    )
    assert argument_hint(operator) == (
        "`provide_context=` was removed in Airflow 3: remove it, the context is always passed; "
        "`task_concurrency=` was removed in Airflow 3: use `max_active_tis_per_dag=`"
    )
    assert argument_hint("TypeError: f() got an unexpected keyword argument 'colour'") is None
    # sla= is still accepted (and ignored): not the cause of an error.
    assert argument_hint("TypeError: x() got an unexpected keyword argument 'sla'") is None
