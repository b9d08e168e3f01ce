"""A small example Airflow 3 project, written by ``dagship quickstart`` into an empty folder."""

from __future__ import annotations

import os
from pathlib import Path

from dagship.project.errors import NotAProjectError
from dagship.project.scan import DAGS_FOLDER

EXAMPLE_FILES: dict[str, str] = {
    "dags/example_dag.py": '''\
"""An example DAG deployed by dagship: two TaskFlow tasks, run on demand."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["example", "dagship"],
)
def example_dag():
    @task
    def extract() -> list[str]:
        return ["Airflow", "dagship"]

    @task
    def say_hello(names: list[str]) -> None:
        for name in names:
            print(f"Hello, {name}!")

    say_hello(extract())


example_dag()
''',
    "include/__init__.py": "",
    "include/greetings.py": '''\
"""Helpers for your DAGs and tasks; include/ is deployed with the project."""


def greeting(name: str) -> str:
    return f"Hello, {name}!"
''',
    "requirements.txt": "# Python packages your DAGs need, one per line (pip syntax).\n",
    ".dagshipignore": (
        "# Files that dagship does not deploy (gitignore syntax).\n"
        "# .git, __pycache__, *.pyc and .env are never deployed.\n"
        "*.log\n"
        ".venv/\n"
    ),
    ".gitignore": ".env\n__pycache__/\n*.pyc\n.venv/\n*.log\n",
    "tests/test_dag_example.py": '''\
"""Checks that the example DAG file parses and defines its DAG."""

import ast
from pathlib import Path

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "example_dag.py"


def test_example_dag_parses():
    tree = ast.parse(DAG_FILE.read_text(), filename=str(DAG_FILE))
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "example_dag" in functions
''',
}


def scaffold_project(path: str | os.PathLike[str]) -> list[str]:
    """Write the example project into ``path`` unless it already has a dags/ folder.

    Returns the paths written (relative to ``path``), empty when nothing was written. Existing
    files are never overwritten.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise NotAProjectError(f"{root} is not a folder: pass a folder for the example project")
    if (root / DAGS_FOLDER).exists():
        return []
    written = []
    for rel, text in EXAMPLE_FILES.items():
        target = root / rel
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(rel)
    return written
