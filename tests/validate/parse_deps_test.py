"""Which project modules a DAG file's parse depends on (validate/parse_deps.py), read from the
files' imports on disk, without Airflow."""

from __future__ import annotations

from pathlib import Path

from dagship.validate.parse_cache import ParseCache, project_file_digests
from dagship.validate.parse_deps import ImportGraph, python_files
from tests.validate.conftest import write_files

FILES = {
    "dags/etl.py": "from helpers.dates import today\nfrom include.sql import query\nimport os\n",
    "dags/report.py": "import plugin_lib\n",
    "dags/plain.py": "from airflow.sdk import DAG\n",
    "dags/helpers/__init__.py": "",
    "dags/helpers/dates.py": "from .clock import now\n",
    "dags/helpers/clock.py": "import time\n",
    "include/__init__.py": "",
    "include/sql.py": "query = 'select 1'\n",
    "plugins/plugin_lib.py": "X = 1\n",
    "dags/dynamic.py": "import importlib\nimportlib.import_module('helpers')\n",
}


def graph_of(project: Path, cache: ParseCache) -> tuple[ImportGraph, dict[str, str]]:
    digests = python_files(project_file_digests(project))
    return ImportGraph(project, digests, cache), digests


def test_a_dag_file_depends_on_the_project_modules_it_imports_through_each_root(
    tmp_path: Path,
) -> None:
    project = write_files(tmp_path / "project", FILES)
    cache = ParseCache(tmp_path / "cache", project)
    graph, digests = graph_of(project, cache)

    def deps(path: str) -> set[str] | None:
        found = graph.dependencies(path, digests[path])
        return None if found is None else set(found)

    # helpers is under dags/ (the bundle's root); include/ under the project's root; the
    # relative import in helpers/dates.py resolves within the bundle.
    assert deps("dags/etl.py") == {
        "dags/helpers/__init__.py",
        "dags/helpers/dates.py",
        "dags/helpers/clock.py",
        "include/__init__.py",
        "include/sql.py",
    }
    assert deps("dags/report.py") == {"plugins/plugin_lib.py"}
    assert deps("dags/plain.py") == set()
    assert deps("dags/dynamic.py") is None  # a computed name: it may import anything


def test_each_files_imports_are_kept_in_the_parse_cache_by_content(tmp_path: Path) -> None:
    project = write_files(tmp_path / "project", FILES)
    cache = ParseCache(tmp_path / "cache", project)
    graph, digests = graph_of(project, cache)
    graph.dependencies("dags/etl.py", digests["dags/etl.py"])
    graph.dependencies("dags/dynamic.py", digests["dags/dynamic.py"])
    cache.save([])

    # The next parse finds them without reading the files (by content, wherever they are).
    kept = ParseCache(tmp_path / "cache", project)
    assert kept.get_imports(digests["dags/helpers/dates.py"]) == (
        True,
        ["helpers", "helpers.clock", "helpers.clock.now"],
    )
    assert kept.get_imports(digests["dags/dynamic.py"]) == (True, None)
    assert kept.get_imports(digests["dags/report.py"]) == (False, None)  # never looked up
