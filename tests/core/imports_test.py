from __future__ import annotations

from dagship.core.imports import NAMED, imported_modules, importers, module_name, references


def test_module_names_follow_the_bundle_root_on_sys_path() -> None:
    assert module_name("helpers.py") == "helpers"
    assert module_name("lib/dates.py") == "lib.dates"
    assert module_name("lib/__init__.py") == "lib"
    assert module_name("README.md") is None
    assert module_name("__init__.py") is None


def test_imports_are_read_everywhere_with_their_packages() -> None:
    source = b"""
import os.path
from lib import dates
from lib import *
from lib.sql import render as r

def build():
    try:
        import late
    except ImportError:
        pass
"""
    assert imported_modules(source, "etl.py") == {
        "os",
        "os.path",
        "lib",
        "lib.dates",
        "lib.sql",
        "lib.sql.render",
        "late",
    }


def test_relative_imports_resolve_against_the_files_package() -> None:
    source = b"from . import a\nfrom .b import c\nfrom ..top import d\nfrom ... import gone\n"
    assert imported_modules(source, "pkg/sub/m.py") == {
        "pkg",
        "pkg.sub",
        "pkg.sub.a",
        "pkg.sub.b",
        "pkg.sub.b.c",
        "pkg.top",
        "pkg.top.d",
    }
    assert imported_modules(b"from . import x\n", "pkg/__init__.py") == {"pkg", "pkg.x"}


def test_a_file_python_cannot_parse_imports_nothing() -> None:
    assert imported_modules(b"import (\n", "broken.py") == frozenset()
    assert imported_modules(b"import a\x00\n", "nul.py") == frozenset()
    assert imported_modules(b"x = 1\n", "plain.py") == frozenset()


def test_importers_are_unchanged_files_that_import_a_changed_module_transitively() -> None:
    sources = {
        "etl.py": b"from lib import helpers\n",
        "report.py": b"import lib.helpers\n",
        "lib/__init__.py": b"",
        "lib/helpers.py": b"from .dates import today\n",
        "lib/dates.py": b"import datetime\n",
        "other.py": b"import datetime\nimport libx\n",
        "README.md": b"import lib\n",
    }
    before = {path: "1" for path in sources}

    def imports_of(path: str) -> frozenset[str]:
        return imported_modules(sources.get(path, b""), path)

    def found(**after: str) -> set[str]:
        return importers(before | after, before, imports_of)

    assert found() == set()
    # helpers.py imports dates.py, etl.py and report.py import helpers.py.
    assert found(**{"lib/dates.py": "2"}) == {"lib/helpers.py", "etl.py", "report.py"}
    # A file whose content changed is no importer: it is a changed file.
    assert found(**{"lib/dates.py": "2", "etl.py": "2"}) == {"lib/helpers.py", "report.py"}
    # A package's __init__ runs for every import below it.
    assert found(**{"lib/__init__.py": "2"}) == {"etl.py", "report.py", "lib/helpers.py"}
    # An added module changes what importing it does (it failed before).
    assert found(**{"libx.py": "1"}) == {"other.py"}
    # So does a removed one.
    assert importers(before, before | {"libx.py": "1"}, imports_of) == {"other.py"}
    assert found(**{"README.md": "2"}) == set()


def test_references_are_the_imports_and_the_file_names_in_string_constants() -> None:
    source = b"""
from pathlib import Path
from airflow.sdk import dag
SQL = Path(__file__).parent / "sql" / "daily.sql"
\"\"\"Reads config/settings.yaml, see e.g. the docs.\"\"\"
def run(base):
    return f"{base}/templates/report.j2", "/opt/airflow/dags/sql/weekly.sql"
"""
    found = references(source, "etl.py")
    assert imported_modules(source, "etl.py") <= found
    named = {name for name in found if name.startswith(NAMED)}
    assert {"/daily.sql", "/settings.yaml", "/report.j2", "/weekly.sql"} <= named
    assert not any(name.startswith(NAMED) for name in imported_modules(source, "etl.py"))


def test_importers_include_dag_files_that_name_a_changed_file_or_a_helper_that_does() -> None:
    sources = {
        "etl.py": b"from airflow.sdk import dag\nSQL = 'sql/daily.sql'\n",
        "report.py": b"from lib.queries import weekly\n",
        "lib/__init__.py": b"",
        "lib/queries.py": b"weekly = 'sql/weekly.sql'\n",
        "other.py": b"from airflow.sdk import dag\nSQL = 'sql/monthly.sql'\n",
        "sql/daily.sql": b"select 1",
        "sql/weekly.sql": b"select 2",
    }
    before = {path: "1" for path in sources}

    def references_of(path: str) -> frozenset[str]:
        return references(sources[path], path)

    def found(**after: str) -> set[str]:
        return importers(before | after, before, references_of)

    assert found(**{"sql/daily.sql": "2"}) == {"etl.py"}
    # Through the bundle's modules: report.py imports the helper that names weekly.sql.
    assert found(**{"sql/weekly.sql": "2"}) == {"lib/queries.py", "report.py"}
    # A file added or removed is named as well (a DAG that named it failed, or now fails).
    assert found(**{"sql/monthly.sql": "1"}) == {"other.py"}
    assert importers(before, before | {"sql/monthly.sql": "1"}, references_of) == {"other.py"}
    assert found(**{"sql/unnamed.sql": "1"}) == set()


def test_a_changed_script_a_task_runs_makes_the_dag_file_that_names_it_an_importer() -> None:
    sources = {
        "etl.py": b"from airflow.sdk import dag\nCMD = 'python {{ dag.folder }}/scripts/load.py'\n",
        "scripts/load.py": b"print('load')\n",
    }
    before = {path: "1" for path in sources}
    found = importers(
        before | {"scripts/load.py": "2"}, before, lambda p: references(sources[p], p)
    )
    assert found == {"etl.py"}
