"""`dagship migrate-check`'s reading of a project: every Airflow 2 -> 3 change, file and line,
without running the code. An Airflow 2 style project with each kind of finding; a clean
Airflow 3 project and Airflow 3.3.2's own example DAGs with none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dagship.validate.errors import ValidateError
from dagship.validate.migrate_check import check_project
from tests.validate.conftest import WriteProject

AIRFLOW2_DAG = """
from datetime import datetime, timedelta

from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.bash import BashOperator
from airflow.operators.dummy import DummyOperator
from airflow.operators.python import PythonOperator, get_current_context
from airflow.utils import dates
from airflow.utils.trigger_rule import TriggerRule

try:
    from airflow.sdk import Asset
except ImportError:
    from airflow.datasets import Dataset as Asset

default_args = {"retries": 2, "sla": timedelta(hours=1), "task_concurrency": 2}


def extract(execution_date, **kwargs):
    print(kwargs["next_ds"], kwargs.get("conf"), kwargs["ds"])


def report():
    context = get_current_context()
    return context["prev_ds"]


def not_a_task(**kwargs):
    return kwargs["conf"]  # a dict of the project's own, not the task context


with DAG(
    "etl",
    schedule_interval="@daily",
    start_date=dates.days_ago(2),
    concurrency=4,
    default_args=default_args,
):
    start = DummyOperator(task_id="start")
    run = PythonOperator(
        task_id="extract",
        python_callable=extract,
        provide_context=True,
    )
    shell = BashOperator(
        task_id="shell",
        bash_command="echo {{ execution_date }} {{ ds }} {{ dag_run.conf['x'] }}",
        trigger_rule="none_failed_or_skipped",
    )
    end = DummyOperator(task_id="end", trigger_rule=TriggerRule.DUMMY, outlets=[Dataset("s3://x")])
    start >> run >> shell >> end
"""

TASKFLOW_DAG = """
import pendulum
from airflow.decorators import dag, task, task_group


@dag(schedule_interval=None, start_date=pendulum.datetime(2024, 1, 1), fail_stop=True)
def flow():
    @task(task_concurrency=1)
    def hello(**context):
        return context["execution_date"], context["ds"]

    @task_group()
    def group(conf):
        hello()

    hello()


flow()
"""

PLUGIN = """
from airflow.plugins_manager import AirflowPlugin
from airflow.hooks.base_hook import BaseHook


class MyPlugin(AirflowPlugin):
    name = "mine"
    operators = []
"""

REPORT_SQL = "SELECT *\nFROM events\nWHERE day = '{{ ds }}'\n  AND loaded < '{{ next_ds }}'\n"


def summary(project: Path) -> list[tuple[str, int, str, str, bool]]:
    report = check_project(project)
    return [(f.path, f.line, f.kind, f.found, f.required) for f in report.findings]


def test_every_kind_of_change_with_its_file_and_line(write_project: WriteProject) -> None:
    project = write_project(
        {
            "dags/etl.py": AIRFLOW2_DAG,
            "dags/taskflow.py": TASKFLOW_DAG,
            "include/sql/report.sql": REPORT_SQL,
            "plugins/my_plugin.py": PLUGIN,
            "tests/dags/test_dag_example.py": (
                "from airflow.models import DagBag\nDagBag(include_examples=False)\n"
            ),
            "dags/.venv/lib/ignored.py": "from airflow.contrib import x\n",
        }
    )
    assert summary(project) == [
        ("dags/etl.py", 4, "import", "airflow.datasets.Dataset", True),
        ("dags/etl.py", 5, "import", "airflow.operators.bash.BashOperator", False),
        ("dags/etl.py", 6, "import", "airflow.operators.dummy.DummyOperator", True),
        ("dags/etl.py", 7, "import", "airflow.operators.python.PythonOperator", False),
        ("dags/etl.py", 7, "import", "airflow.operators.python.get_current_context", False),
        ("dags/etl.py", 9, "import", "airflow.utils.trigger_rule.TriggerRule", False),
        ("dags/etl.py", 16, "argument", "sla=", False),
        ("dags/etl.py", 16, "argument", "task_concurrency=", True),
        ("dags/etl.py", 19, "context", "execution_date", True),
        ("dags/etl.py", 20, "context", "next_ds", True),
        ("dags/etl.py", 20, "context", "conf", True),
        ("dags/etl.py", 25, "context", "prev_ds", True),
        ("dags/etl.py", 34, "argument", "schedule_interval=", True),
        ("dags/etl.py", 35, "name", "airflow.utils.dates.days_ago", True),
        ("dags/etl.py", 36, "argument", "concurrency=", True),
        ("dags/etl.py", 43, "argument", "provide_context=", True),
        ("dags/etl.py", 47, "template", "execution_date", True),
        ("dags/etl.py", 48, "argument", 'trigger_rule="none_failed_or_skipped"', True),
        ("dags/etl.py", 50, "name", "airflow.utils.trigger_rule.TriggerRule.DUMMY", True),
        ("dags/taskflow.py", 2, "import", "airflow.decorators.dag", False),
        ("dags/taskflow.py", 2, "import", "airflow.decorators.task", False),
        ("dags/taskflow.py", 2, "import", "airflow.decorators.task_group", False),
        ("dags/taskflow.py", 5, "argument", "schedule_interval=", True),
        ("dags/taskflow.py", 5, "argument", "fail_stop=", True),
        ("dags/taskflow.py", 7, "argument", "task_concurrency=", True),
        ("dags/taskflow.py", 9, "context", "execution_date", True),
        ("include/sql/report.sql", 4, "template", "next_ds", True),
        ("plugins/my_plugin.py", 2, "import", "airflow.hooks.base_hook.BaseHook", True),
        ("plugins/my_plugin.py", 7, "plugin", "operators", False),
        ("tests/dags/test_dag_example.py", 2, "argument", "include_examples=", False),
    ]
    report = check_project(project)
    assert (report.needed, report.suggested, report.ok) == (20, 10, False)
    assert report.files == 5  # the .venv folder is not the project's code
    by_found = {f.found: f for f in report.findings}
    assert by_found["airflow.operators.dummy.DummyOperator"].replacement == (
        "airflow.providers.standard.operators.empty.EmptyOperator"
    )
    assert by_found["schedule_interval="].replacement == "schedule="
    assert by_found["prev_ds"].message == (
        "the `prev_ds` context key was removed in Airflow 3: use "
        "`prev_data_interval_start_success | ds`"
    )
    assert by_found["next_ds"].message.startswith("the `next_ds` template variable")


def test_a_clean_airflow_3_project_needs_nothing(write_project: WriteProject) -> None:
    project = write_project(
        {
            "dags/etl.py": """
                import pendulum
                from airflow.providers.standard.operators.bash import BashOperator
                from airflow.sdk import DAG, Asset, get_current_context, task

                with DAG("etl", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1)):
                    @task(max_active_tis_per_dag=1)
                    def hello(**context):
                        return context["logical_date"], get_current_context()["ds"]

                    BashOperator(
                        task_id="shell",
                        bash_command="echo {{ logical_date }} {{ dag_run.conf['x'] }}",
                        outlets=[Asset("s3://x")],
                    ) >> hello()
                """,
            "include/report.sql": "SELECT 1 WHERE day = '{{ ds }}'\n",
        }
    )
    report = check_project(project)
    assert report.findings == [] and report.ok
    assert report.to_dict() == {
        "project": str(project),
        "ok": True,
        "files": 2,
        "needed": 0,
        "suggested": 0,
        "findings": [],
    }


def test_airflow_3s_own_example_dags_need_nothing(tmp_path: Path) -> None:
    """Real Airflow 3 code, 80 files of it: no change reported (no false alarm)."""
    airflow = pytest.importorskip("airflow")
    project = tmp_path / "project"
    shutil.copytree(Path(airflow.__file__).parent / "example_dags", project / "dags")
    report = check_project(project)
    assert report.files > 50
    assert report.findings == []


def test_a_file_python_cannot_read_is_reported(write_project: WriteProject) -> None:
    project = write_project({"dags/old.py": "print 'Airflow 1'\n", "dags/ok.py": "x = 1\n"})
    [finding] = check_project(project).findings
    assert (finding.path, finding.line, finding.kind, finding.required) == (
        "dags/old.py",
        1,
        "syntax",
        True,
    )
    assert finding.message.startswith("cannot read dags/old.py: ")


def test_a_folder_without_dags_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidateError, match="no dags/ folder"):
        check_project(tmp_path)
