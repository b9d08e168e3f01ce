"""``dagship parse`` on real DAG files with the real Airflow 3.3.2 of the test interpreter.

Every case of a broken DAG file is in one project parsed once (workers import Airflow, which
takes seconds): each must be reported against its own file and line while the good files parse.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dagship.validate.parse import stop_forkservers
from tests.helpers import clean_env
from tests.validate.conftest import ParseCli, by_path, write_files

AIRFLOW_SPEC = importlib.util.find_spec("airflow")
assert AIRFLOW_SPEC is not None and AIRFLOW_SPEC.origin is not None
AIRFLOW_EXAMPLES = Path(AIRFLOW_SPEC.origin).parent / "example_dags"

GOOD = """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("{dag_id}", schedule=None):
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

BROKEN_PROJECT = {
    "dags/good.py": GOOD.format(dag_id="good"),
    "dags/placeholders.py": """
        import os

        from airflow.sdk import DAG, Variable
        from airflow.sdk.bases.hook import BaseHook
        from airflow.providers.standard.operators.empty import EmptyOperator

        bucket = Variable.get("landing_bucket")
        settings = Variable.get("settings", deserialize_json=True)
        region = settings["region"]
        warehouse = BaseHook.get_connection("warehouse")
        api_url = os.environ["PLACEHOLDER_TEST_API_URL"]
        team = os.getenv("PLACEHOLDER_TEST_TEAM", "data")
        assert team == "data", team  # an explicit default still wins

        with DAG("uses_placeholders", schedule=None, tags=[bucket, region, api_url]):
            EmptyOperator(task_id=f"load_{warehouse.conn_id}")
    """,
    "dags/syntax_error.py": """
        from airflow.sdk import DAG

        with DAG("syntax", schedule=None:
            pass
    """,
    "dags/missing_import.py": """
        from airflow.sdk import DAG
        import pandas_that_is_not_installed
    """,
    "dags/cycle.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG("cycle", schedule=None):
            a = EmptyOperator(task_id="a")
            b = EmptyOperator(task_id="b")
            a >> b >> a
    """,
    "dags/duplicate_one.py": GOOD.format(dag_id="same_id"),
    "dags/duplicate_two.py": GOOD.format(dag_id="same_id"),
    "dags/slow.py": """
        import time
        from airflow.sdk import DAG

        time.sleep(120)
    """,
    "dags/metadata_db.py": """
        from airflow.sdk import DAG
        from airflow.models import DagRun
        from airflow.settings import Session

        runs = Session().query(DagRun).count()
    """,
    "dags/hung.py": """
        # Blocks Airflow's timeout alarm: only killing the worker stops it.
        import signal
        import time
        from airflow.sdk import DAG

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    """,
    "dags/after_hung.py": GOOD.format(dag_id="after_hung"),
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    from tests.helpers import Cli

    root = tmp_path_factory.mktemp("broken")
    project = write_files(root / "project", BROKEN_PROJECT)
    cache = root / "cache"
    result = Cli(None, None)(
        "parse", project, "--local", "--jobs", "2", "--timeout", "3", "--json",
        env={"DAGSHIP_CACHE_DIR": str(cache), "DAGSHIP_PARSE_SERVER_IDLE": "0"},
    )  # fmt: skip
    assert result.code == 1, result.err
    return project, cache, result.json()


def error_of(report: dict[str, Any], path: str) -> dict[str, Any]:
    errors = by_path(report)[path]["errors"]
    assert len(errors) == 1, errors
    return dict(errors[0])


def test_good_files_parse_next_to_broken_ones(broken: tuple[Path, Path, dict[str, Any]]) -> None:
    _, _, report = broken
    files = by_path(report)
    assert files["dags/good.py"]["errors"] == []
    assert files["dags/good.py"]["dags"] == [{"dag_id": "good", "tasks": 2}]
    # The file after the hung one still parsed, in a fresh worker.
    assert files["dags/after_hung.py"]["dags"] == [{"dag_id": "after_hung", "tasks": 2}]
    assert report["ok"] is False
    assert report["airflow_version"] == "3.3.2"


def test_placeholders_let_top_level_reads_parse(broken: tuple[Path, Path, dict[str, Any]]) -> None:
    _, _, report = broken
    result = by_path(report)["dags/placeholders.py"]
    assert result["errors"] == []
    assert result["dags"] == [{"dag_id": "uses_placeholders", "tasks": 1}]
    assert result["placeholders"] == [
        "connection warehouse",
        "env PLACEHOLDER_TEST_API_URL",
        "variable landing_bucket",
        "variable settings",
    ]


@pytest.mark.parametrize(
    ("path", "kind", "line", "needle"),
    [
        ("dags/syntax_error.py", "syntax", 3, "SyntaxError"),
        ("dags/missing_import.py", "import", 2, "No module named 'pandas_that_is_not_installed'"),
        ("dags/cycle.py", "cycle", None, "Cycle detected in Dag: cycle"),
        ("dags/slow.py", "timeout", 4, "took longer than 3s to import"),
        ("dags/metadata_db.py", "metadata-database", 5, "queries the Airflow metadata database"),
        ("dags/hung.py", "timeout", None, "was still importing after 3s"),
    ],
)
def test_each_error_names_its_file_and_line(
    broken: tuple[Path, Path, dict[str, Any]], path: str, kind: str, line: int | None, needle: str
) -> None:
    _, _, report = broken
    error = error_of(report, path)
    assert error["kind"] == kind
    assert error["line"] == line
    assert needle in error["message"]
    if line is not None:
        # The traceback is cut to the project's own frames: no Airflow internals.
        assert f'File "{path}", line {line}' in error["traceback"]
        assert "site-packages" not in error["traceback"]


def test_duplicate_dag_id_names_both_files(broken: tuple[Path, Path, dict[str, Any]]) -> None:
    _, _, report = broken
    assert by_path(report)["dags/duplicate_one.py"]["errors"] == []
    error = error_of(report, "dags/duplicate_two.py")
    assert error["kind"] == "duplicate-dag-id"
    assert "'same_id'" in error["message"] and "dags/duplicate_one.py" in error["message"]


def test_human_output_shows_each_error_with_file_and_line(
    broken: tuple[Path, Path, dict[str, Any]], parse_cli: ParseCli
) -> None:
    project, cache, _ = broken
    # Only the fast failures: the slow files are excepted, which also exercises the file.
    write_files(project, {".dagship/parse_exceptions.txt": "dags/slow.py\ndags/hung.py\n"})
    result = parse_cli(project, "--local", "--timeout", "3", cache_dir=cache)
    assert result.code == 1
    out = result.out
    assert "Error in dags/syntax_error.py:3 (syntax)" in out
    assert "Error in dags/missing_import.py:2 (import)" in out
    assert "Error in dags/metadata_db.py:5 (metadata-database)" in out
    assert "Error in dags/cycle.py (cycle)" in out
    assert "Error in dags/duplicate_two.py (duplicate-dag-id)" in out
    assert "Skipped dags/slow.py" in out and "Skipped dags/hung.py" in out
    assert "Slowest files:" in out
    assert "5 errors." in out
    assert "(cached)" in out  # nothing changed since the first run


def test_airflowignore_heuristic_and_exceptions_select_the_files(
    write_project: Any, parse_cli: ParseCli
) -> None:
    project = write_project(
        {
            "dags/.airflowignore": "ignored_*.py\nscratch/\n",
            "dags/kept.py": GOOD.format(dag_id="kept"),
            "dags/ignored_one.py": "raise RuntimeError('ignored by .airflowignore')  # airflow dag",
            "dags/scratch/draft.py": "raise RuntimeError('ignored folder')  # airflow dag",
            "dags/helpers.py": "raise RuntimeError('no DAG words: not a DAG file')",
            "dags/nested/inner.py": GOOD.format(dag_id="inner"),
            "dags/astro_excepted.py": "raise RuntimeError('excepted')  # airflow dag",
            ".astro/dag_integrity_exceptions.txt": (
                "# Add dag files to exempt from parse test below\ndags/astro_excepted.py\n"
            ),
        }
    )
    report = parse_cli(project, "--local", "--jobs", "1", "--json").ok().json()
    assert sorted(by_path(report)) == ["dags/kept.py", "dags/nested/inner.py"]
    assert report["skipped"] == ["dags/astro_excepted.py"]
    # The same selection as Airflow's own DAG file discovery (before the exceptions file).
    airflow_listed = _airflow_list_dag_files(project / "dags")
    assert airflow_listed == ["astro_excepted.py", "kept.py", "nested/inner.py"]


def test_a_custom_might_contain_dag_callable_selects_the_files(
    write_project: Any, parse_cli: ParseCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(
        {
            "dag_filter.py": (
                "def only_dag_suffix(file_path, zip_file=None):\n"
                "    return file_path.endswith('_dag.py')\n"
            ),
            "dags/sales_dag.py": GOOD.format(dag_id="sales"),
            "dags/marketing.py": GOOD.format(dag_id="marketing"),
        }
    )
    monkeypatch.setenv("AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE", "dag_filter.only_dag_suffix")
    monkeypatch.setenv("PYTHONPATH", str(project))
    report = parse_cli(project, "--local", "--json").ok().json()
    assert sorted(by_path(report)) == ["dags/sales_dag.py"]
    assert _airflow_list_dag_files(project / "dags") == ["sales_dag.py"]


def _airflow_list_dag_files(dags: Path) -> list[str]:
    code = (
        "import json, sys\n"
        "from airflow.utils.file import list_py_file_paths\n"
        "print(json.dumps(sorted(list_py_file_paths(sys.argv[1], safe_mode=True))))\n"
    )
    out = _airflow_python(code, dags, dags.parent)
    return [str(Path(p).relative_to(dags)) for p in out]


def _airflow_python(code: str, argument: Path, home: Path) -> Any:
    env = clean_env()
    env.update({"AIRFLOW_HOME": str(home / ".airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    done = subprocess.run(
        [sys.executable, "-c", code, str(argument)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cache_imports_only_the_changed_file_again(write_project: Any, parse_cli: ParseCli) -> None:
    log = Path(write_project({}).parent / "imports.log")
    dag = """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        from include.naming import task_name

        with open({log!r}, "a") as handle:
            handle.write("{name}\\n")  # a side effect of each import
        with DAG("{name}", schedule=None):
            EmptyOperator(task_id=task_name({tasks}))
    """
    files = {
        f"dags/{name}.py": dag.format(log=str(log), name=name, tasks=1) for name in ("a", "b", "c")
    }
    # c.py takes its names from a module of the DAG bundle, through another one.
    files["dags/c.py"] = files["dags/c.py"].replace("include.naming", "lib.names")
    files["dags/lib/names.py"] = "from lib.base import task_name\n"
    files["dags/lib/base.py"] = "def task_name(n):\n    return f'c_{n}'\n"
    files["include/naming.py"] = "def task_name(n):\n    return f'task_{n}'\n"
    files["include/sql/report.sql"] = "select 1;\n"
    project = write_project(files)

    # One forkserver serves every parse here (the startup code does not change).
    try:
        first = parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok().json()
        assert sorted(log.read_text().split()) == ["a", "b", "c"]
        assert [f["cached"] for f in first["files"]] == [False, False, False]

        log.write_text("")
        (project / "dags" / "b.py").write_text(
            (project / "dags" / "b.py").read_text().replace("task_name(1)", "task_name(2)")
        )
        second = parse_cli(project, "--local", "--json", idle=60).ok().json()
        assert log.read_text().split() == ["b"]  # only the changed file was imported again
        assert {f["path"]: f["cached"] for f in second["files"]} == {
            "dags/a.py": True,
            "dags/b.py": False,
            "dags/c.py": True,
        }
        assert second["workers"] == 1

        log.write_text("")
        unchanged = parse_cli(project, "--local", "--json", idle=60).ok().json()
        assert log.read_text() == "" and unchanged["workers"] == 0
        assert unchanged["cached_files"] == 3

        # A module changed: the files that import it, directly or not, are imported again.
        (project / "include" / "naming.py").write_text("def task_name(n):\n    return f't{n}'\n")
        shared = parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok().json()
        assert sorted(log.read_text().split()) == ["a", "b"]
        assert shared["cached_files"] == 1
        log.write_text("")
        (project / "dags" / "lib" / "base.py").write_text("def task_name(n):\n    return f'b{n}'\n")
        parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok()
        assert log.read_text().split() == ["c"]

        # Data a DAG file may read at parse time changed: every file is imported again.
        log.write_text("")
        (project / "include" / "sql" / "report.sql").write_text("select 2;\n")
        parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok()
        assert sorted(log.read_text().split()) == ["a", "b", "c"]

        # A file importing by computed name may import any module: any change imports it again.
        (project / "dags" / "a.py").write_text(
            (project / "dags" / "a.py").read_text() + "import importlib\n"
            "importlib.import_module('include.naming')\n"
        )
        parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok()
        log.write_text("")
        (project / "dags" / "lib" / "base.py").write_text("def task_name(n):\n    return f'x{n}'\n")
        parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok()
        assert sorted(log.read_text().split()) == ["a", "c"]

        log.write_text("")
        parse_cli(project, "--local", "--jobs", "1", "--json", "--no-cache", idle=60).ok()
        assert sorted(log.read_text().split()) == ["a", "b", "c"]
    finally:
        stop_forkservers(project)


def test_a_forkserver_left_running_serves_the_next_parse(
    write_project: Any, parse_cli: ParseCli
) -> None:
    log = Path(write_project({}).parent / "imports.log")
    dag = """
        import os
        from airflow.sdk import DAG

        with open({log!r}, "a") as handle:
            handle.write(os.environ.get("PARSE_TEST_STAGE", "unset") + "\\n")
        with DAG("{name}", schedule=None):
            pass
    """
    project = write_project({f"dags/{n}.py": dag.format(log=str(log), name=n) for n in "ab"})
    try:
        first = parse_cli(project, "--local", "--jobs", "1", "--json", idle=60).ok().json()
        assert first["forkserver_reused"] is False
        os.environ["PARSE_TEST_STAGE"] = "second"
        try:
            (project / "dags" / "b.py").write_text((project / "dags" / "b.py").read_text() + "#\n")
            second = parse_cli(project, "--local", "--json", idle=60).ok().json()
        finally:
            del os.environ["PARSE_TEST_STAGE"]
        assert second["forkserver_reused"] is True
        assert [f["path"] for f in second["files"] if not f["cached"]] == ["dags/b.py"]
        # The worker sees this command's environment, not the one the forkserver started with.
        assert log.read_text().split() == ["unset", "unset", "second"]
        # A running forkserver lists the files as they are now.
        (project / "dags" / ".airflowignore").write_text("b.py\n")
        third = parse_cli(project, "--local", "--json", idle=60).ok().json()
        assert third["forkserver_reused"] is True
        assert [f["path"] for f in third["files"]] == ["dags/a.py"]
    finally:
        assert stop_forkservers(project) == 1
    fourth = parse_cli(project, "--local", "--json", "--no-cache").ok().json()
    assert fourth["forkserver_reused"] is False
    # Started only to list files that were all cached, a forkserver is not left running.
    fifth = parse_cli(project, "--local", "--json", idle=60).ok().json()
    assert fifth["workers"] == 0 and fifth["cached_files"] == 1
    assert stop_forkservers(project) == 0


def test_a_project_without_dags_folder_is_a_clear_error(
    write_project: Any, parse_cli: ParseCli
) -> None:
    project = write_project({"README.md": "not an Airflow project\n"})
    parse_cli(project, "--local").failed("has no dags/ folder")


def test_an_unknown_image_asks_for_airflow_version(write_project: Any, parse_cli: ParseCli) -> None:
    project = write_project(
        {"dags/a.py": GOOD.format(dag_id="a"), "Dockerfile": "FROM ubuntu:24.04\n"}
    )
    result = parse_cli(project).failed("ubuntu:24.04", "airflow_version")
    assert "dagship.yaml" in result.err
    assert not (project / ".dagship").exists()


def test_empty_dags_folder_says_so(write_project: Any, parse_cli: ParseCli) -> None:
    project = write_project({"dags/.airflowignore": ""})
    result = parse_cli(project, "--local").ok()
    assert "No DAG files to parse" in result.out


@pytest.fixture(autouse=True)
def _no_stray_placeholder_env() -> None:
    # The placeholder test relies on these being unset.
    for name in ("PLACEHOLDER_TEST_API_URL", "PLACEHOLDER_TEST_TEAM"):
        assert name not in os.environ


def test_parse_says_its_worker_stays_warm_and_parse_stop_ends_it(
    write_project: Any, parse_cli: ParseCli
) -> None:
    project = write_project(
        {"dags/a.py": "from airflow.sdk import DAG\n\nwith DAG('a', schedule=None):\n    pass\n"}
    )
    try:
        parsed = parse_cli(project, "--local", idle=60).ok()
        assert "The parse worker stays warm for 1m for the next parse" in parsed.err
        assert "`dagship parse --stop` ends it now" in parsed.err
        stopped = parse_cli(project, "--stop", idle=60).ok()
        assert f"Stopped 1 parse worker of {project.resolve()}." in stopped.out
    finally:
        leftover = stop_forkservers(project)
    assert leftover == 0
    again = parse_cli(project, "--stop", "--json").ok().json()
    assert again == {"stopped": 0}
    # Without a warm worker (idle 0) the command does not promise one.
    assert "stays warm" not in parse_cli(project, "--local").ok().err


def test_files_sent_behind_a_hung_or_crashed_one_parse_in_a_fresh_worker(
    write_project: Any, parse_cli: ParseCli
) -> None:
    # One worker, the largest file first: each worker has the next file before it answers, so
    # the file behind the hung one, and the one behind the crash, wait in a killed worker.
    padding = "# padding\n" * 200
    project = write_project(
        {
            "dags/a_hung.py": textwrap.dedent(BROKEN_PROJECT["dags/hung.py"]) + padding,
            "dags/b_exits.py": "import os\nfrom airflow.sdk import DAG\n\nos._exit(3)\n"
            + padding[:1000],
            "dags/c_good.py": GOOD.format(dag_id="c_good"),
        }
    )
    report = parse_cli(project, "--local", "--jobs", "1", "--timeout", "3", "--json").json()
    files = by_path(report)
    assert [e["kind"] for e in files["dags/a_hung.py"]["errors"]] == ["timeout"]
    assert [e["kind"] for e in files["dags/b_exits.py"]["errors"]] == ["crash"]
    assert files["dags/c_good.py"]["errors"] == []
    assert files["dags/c_good.py"]["dags"] == [{"dag_id": "c_good", "tasks": 2}]
