"""Warnings Airflow's DagBag captures appear in ``dagship parse``: a count per file in the
table, the list with ``--verbose``, everything in ``--json``; never as errors; cached."""

from __future__ import annotations

from typing import Any

from tests.validate.conftest import ParseCli, by_path

OLD_IMPORTS = """
    import pendulum
    from airflow.decorators import dag, task


    @dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1))
    def old_imports():
        @task
        def hello():
            return 1

        hello()


    old_imports()
"""
CURRENT = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("current", schedule=None):
        EmptyOperator(task_id="a")
"""
DEPRECATED = [
    {
        "category": "DeprecatedImportWarning",
        "message": f"The `airflow.decorators.{name}` attribute is deprecated. "
        f"Please use `'airflow.sdk.{name}'`.",
        "file": "dags/old_imports.py",
        "line": 2,
    }
    for name in ("dag", "task")
]


def test_deprecated_imports_are_warnings_not_errors(
    write_project: Any, parse_cli: ParseCli
) -> None:
    project = write_project({"dags/old_imports.py": OLD_IMPORTS, "dags/current.py": CURRENT})
    report = parse_cli(project, "--local", "--json").ok().json()
    files = by_path(report)
    assert files["dags/old_imports.py"]["warnings"] == DEPRECATED
    assert files["dags/old_imports.py"]["dags"] == [{"dag_id": "old_imports", "tasks": 1}]
    assert files["dags/current.py"]["warnings"] == []
    assert (report["ok"], report["error_count"], report["warning_count"]) == (True, 0, 2)

    # The table counts them and says how to list them; they come from the cache unchanged.
    table = parse_cli(project, "--local").ok().out
    row = next(line for line in table.splitlines() if line.startswith("dags/old_imports.py"))
    assert "│        2 │ ok (cached)" in row, row
    assert "2 warnings (deprecated imports and the like): run `dagship parse --verbose`" in table
    assert "0 errors, 2 warnings." in table
    assert "Please use" not in table

    verbose = parse_cli(project, "--local", "--verbose").ok().out
    assert (
        "Warning in dags/old_imports.py:2 (DeprecatedImportWarning): The "
        "`airflow.decorators.dag` attribute is deprecated. Please use `'airflow.sdk.dag'`."
    ) in verbose
    assert "`airflow.decorators.task` attribute is deprecated" in verbose
    cached = parse_cli(project, "--local", "--json").ok().json()
    assert by_path(cached)["dags/old_imports.py"]["cached"] is True
    assert by_path(cached)["dags/old_imports.py"]["warnings"] == DEPRECATED
