"""The example Airflow 3 project written by ``dagship init`` and ``dagship quickstart``.

The layout is the Astro CLI's (``dags/``, ``include/``, ``plugins/``, ``tests/dags/``,
``requirements.txt``, ``packages.txt``, ``Dockerfile``, ``airflow_settings.yaml``), so an Astro
user finds their way around, plus dagship's ``dagship.yaml`` and ``.dagshipignore``.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagship.project.errors import NotAProjectError, ProjectError
from dagship.project.scan import DAGS_FOLDER

AIRFLOW_VERSION = "3.3.2"
DEFAULT_SERVER_URL = "http://127.0.0.1:8787"

EXAMPLE_DAG = '''\
"""An example DAG deployed by dagship: two TaskFlow tasks, run on demand.

Edit it, run `dagship deploy --deployment local --wait`, and Airflow runs the new code within
seconds. Helpers shared by several DAGs go to include/ (importable as `include.greetings`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    default_args={"owner": "dagship", "retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["example", "dagship"],
)
def example_dag():
    @task
    def extract() -> list[str]:
        return ["Airflow", "dagship"]

    @task
    def say_hello(names: list[str]) -> list[str]:
        greetings = [f"Hello, {name}!" for name in names]
        for line in greetings:
            print(line)
        return greetings

    say_hello(extract())


example_dag()
'''

DAG_INTEGRITY_TEST = '''\
"""DAG integrity tests, as in an Astro CLI project: every DAG file imports without errors,
every DAG has tags and retries. Adapt them to your team's rules.

Run with `pytest tests/` in an environment with Apache Airflow installed
(`pip install -r requirements.txt apache-airflow==AIRFLOW_VERSION`).
"""

from __future__ import annotations

import inspect
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from airflow.models import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
APPROVED_TAGS: set[str] = set()  # leave empty to accept any tag


@contextmanager
def suppress_logging(namespace: str):
    logger = logging.getLogger(namespace)
    old_value = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = old_value


def _dag_bag() -> DagBag:
    kwargs = {}
    if "include_examples" in inspect.signature(DagBag).parameters:
        kwargs["include_examples"] = False  # Airflow < 3.2 adds its example DAGs otherwise
    with suppress_logging("airflow"):
        return DagBag(dag_folder=str(DAGS_FOLDER), **kwargs)


def _relative(path: str) -> str:
    return os.path.relpath(path, DAGS_FOLDER) if os.path.isabs(path) else path


def get_import_errors():
    """(relative file, error) pairs; (None, None) keeps the list non-empty for pytest."""
    bag = _dag_bag()
    return [(None, None)] + [
        (_relative(path), error.strip()) for path, error in bag.import_errors.items()
    ]


def get_dags():
    bag = _dag_bag()
    return [
        (dag_id, dag, _relative(dag.fileloc)) for dag_id, dag in bag.dags.items()
    ]


@pytest.mark.parametrize(
    "rel_path,rv", get_import_errors(), ids=[str(x[0]) for x in get_import_errors()]
)
def test_file_imports(rel_path, rv):
    """Every file in dags/ imports without errors."""
    if rel_path and rv:
        raise Exception(f"{rel_path} failed to import with message \\n {rv}")


@pytest.mark.parametrize("dag_id,dag,fileloc", get_dags(), ids=[x[2] for x in get_dags()])
def test_dag_tags(dag_id, dag, fileloc):
    """Every DAG has tags (from APPROVED_TAGS when that set is not empty)."""
    assert dag.tags, f"{dag_id} in {fileloc} has no tags"
    if APPROVED_TAGS:
        assert not set(dag.tags) - APPROVED_TAGS


@pytest.mark.parametrize("dag_id,dag,fileloc", get_dags(), ids=[x[2] for x in get_dags()])
def test_dag_retries(dag_id, dag, fileloc):
    """Every DAG retries failed tasks at least twice."""
    assert dag.default_args.get("retries", 0) >= 2, (
        f"{dag_id} in {fileloc} must have task retries >= 2."
    )
'''.replace("AIRFLOW_VERSION", AIRFLOW_VERSION)

DAGSHIP_YAML = f"""\
# dagship settings for this project.
# Server that `dagship deploy` talks to; $DAGSHIP_URL and --url take precedence.
url: {DEFAULT_SERVER_URL}
# Airflow version the project runs on (the Dockerfile's FROM line says the same).
airflow_version: {AIRFLOW_VERSION}
# Git branch -> deployment: CI deploys a push to a branch to its deployment.
deployments:
  main: local
  # release: prod
"""

EXAMPLE_FILES: dict[str, str] = {
    "dags/example_dag.py": EXAMPLE_DAG,
    "dags/.airflowignore": "# Files in dags/ that Airflow does not parse (a glob per line).\n",
    "include/__init__.py": "",
    "include/greetings.py": '''\
"""Helpers for your DAGs and tasks; include/ is deployed with the project."""


def greeting(name: str) -> str:
    return f"Hello, {name}!"
''',
    "plugins/.gitkeep": "",
    "tests/dags/test_dag_example.py": DAG_INTEGRITY_TEST,
    "requirements.txt": "# Python packages your DAGs need, one per line (pip syntax).\n",
    "packages.txt": "# OS-level packages your DAGs need, one per line (apt names).\n",
    "Dockerfile": f"FROM apache/airflow:{AIRFLOW_VERSION}\n",
    "airflow_settings.yaml": """\
# Connections, pools and variables for a local Airflow (the Astro CLI's format).
airflow:
  connections: []
  pools: []
  variables: []
""",
    "dagship.yaml": DAGSHIP_YAML,
    ".dagshipignore": (
        "# Files that dagship does not deploy (gitignore syntax).\n"
        "# .git, __pycache__, *.pyc and .env are never deployed.\n"
        "*.log\n"
        ".venv/\n"
        ".pytest_cache/\n"
    ),
    ".gitignore": ".env\n.env.*\n__pycache__/\n*.pyc\n.venv/\n*.log\n.pytest_cache/\n",
}


class ProjectExistsError(ProjectError):
    """``dagship init`` was pointed at a folder that already holds a project."""


def has_project(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` already holds an Airflow project (it has a dags/ folder)."""
    return (Path(path) / DAGS_FOLDER).exists()


def scaffold_project(path: str | os.PathLike[str]) -> list[str]:
    """Write the example project into ``path`` unless it already has a dags/ folder
    (what ``dagship quickstart`` does). Returns the paths written, empty if none."""
    if has_project(path):
        _check_folder(Path(path))
        return []
    return write_example_files(path)


def init_project(path: str | os.PathLike[str], force: bool = False) -> list[str]:
    """``dagship init``: write the example project into ``path`` (created if missing).

    A folder that already has dags/ is refused with ``ProjectExistsError`` unless ``force``;
    with ``force`` only the missing files are added. Existing files are never overwritten.
    Returns the paths written (relative to ``path``).
    """
    root = Path(path)
    _check_folder(root)
    if has_project(root) and not force:
        raise ProjectExistsError(
            f"{root} already has a project (dags/): nothing written. Use `dagship init --force` "
            "to add the missing example files (existing files are never overwritten)."
        )
    return write_example_files(root)


def write_example_files(path: str | os.PathLike[str]) -> list[str]:
    """Write each example file that does not exist yet; return those written."""
    root = Path(path)
    _check_folder(root)
    written = []
    for rel, text in EXAMPLE_FILES.items():
        target = root / rel
        if target.exists() or target.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": never clobber a file created since the check above.
        try:
            with target.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            continue
        written.append(rel)
    return written


def _check_folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise NotAProjectError(f"{root} is not a folder: pass a folder for the project")
