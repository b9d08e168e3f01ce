"""The project's ``.env`` for ``dagship parse`` and ``dagship test``: the format, the precedence
of the calling environment, and the real commands reading it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dagship.validate.env_file import project_variables, read_env_file, with_variables
from dagship.validate.errors import ValidateError
from tests.helpers import Cli, write
from tests.validate.conftest import ParseCli, by_path

ENV_FILE = """
# local settings
AIRFLOW_VAR_BUCKET=landing
export API_URL = https://api.example.com/v1   # the staging API
GREETING="hello # not a comment"
RAW='a $literal \\n'
MULTI="two\\nlines"
EMPTY=
"""


def test_the_format_is_dockers(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", ENV_FILE)
    assert read_env_file(path) == {
        "AIRFLOW_VAR_BUCKET": "landing",
        "API_URL": "https://api.example.com/v1",
        "GREETING": "hello # not a comment",
        "RAW": "a $literal \\n",
        "MULTI": "two\nlines",
        "EMPTY": "",
    }


def test_an_escaped_quote_stays_in_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, ".env", "A=\"a\\\"b\"\nB='it\\'s'\n")
    assert read_env_file(path) == {"A": 'a"b', "B": "it's"}


def test_variables_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSHIP_TEST_SHELL", "from-shell")
    monkeypatch.delenv("DAGSHIP_TEST_UNSET", raising=False)
    text = (
        "BUCKET=landing\n"
        "URL=s3://${BUCKET}/in\n"
        "SHELL_VALUE=${DAGSHIP_TEST_SHELL}\n"
        "FALLBACK=${DAGSHIP_TEST_UNSET:-default}\n"
        "LITERAL='${BUCKET}'\n"
    )
    path = write(tmp_path, ".env", text)
    assert read_env_file(path) == {
        "BUCKET": "landing",
        "URL": "s3://landing/in",
        "SHELL_VALUE": "from-shell",
        "FALLBACK": "default",
        "LITERAL": "${BUCKET}",  # single quotes: taken literally
    }


def test_the_calling_environment_wins_in_expansions_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BUCKET is the shell's for the DAGs, so URL built from it is the shell's as well.
    monkeypatch.setenv("BUCKET", "ci")
    path = write(tmp_path, ".env", "BUCKET=landing\nURL=s3://${BUCKET}/in\n")
    variables = read_env_file(path)
    assert variables["URL"] == "s3://ci/in"
    assert with_variables(variables)["BUCKET"] == "ci"


def test_a_quoted_value_may_span_lines(tmp_path: Path) -> None:
    text = 'KEY="-----BEGIN KEY-----\nabc\n-----END KEY-----"\nNEXT=1\n'
    path = write(tmp_path, ".env", text)
    assert read_env_file(path) == {
        "KEY": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
        "NEXT": "1",
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("GOOD=1\nnot a variable\n", ".env:2: expected KEY=VALUE"),
        ("# settings\n\nGOOD=1\n\n\nBAD\n", ".env:6: expected KEY=VALUE"),
        ('A="x" trailing\n', ".env:1: expected KEY=VALUE"),
        ("A='closed'\nB='open\n", ".env:2: the value's ' quote is not closed"),
        ("1ST=x\n", ".env:1: expected KEY=VALUE"),
        ('KEY="open\n', ".env:1: the value's \" quote is not closed"),
    ],
)
def test_a_bad_line_is_named_with_its_number(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, ".env", text)
    with pytest.raises(ValidateError, match=re.escape(needle)):
        read_env_file(path)


def test_the_project_file_is_optional_but_a_named_one_must_exist(tmp_path: Path) -> None:
    assert project_variables(tmp_path) == {}
    write(tmp_path, ".env", "A=1\n")
    assert project_variables(tmp_path) == {"A": "1"}
    other = write(tmp_path, "ci.env", "B=2\n")
    assert project_variables(tmp_path, other) == {"B": "2"}  # instead of .env, not as well
    with pytest.raises(ValidateError, match=re.escape("missing.env does not exist")):
        project_variables(tmp_path, tmp_path / "missing.env")


def test_the_calling_environment_wins() -> None:
    assert with_variables({"A": "file", "B": "file"}, {"A": "shell"}) == {"A": "shell", "B": "file"}


READS_SETTINGS = """
    import os
    from airflow.sdk import DAG, Variable

    with DAG("reads_" + Variable.get("bucket") + "_" + os.environ["API_REGION"], schedule=None):
        pass
"""


def test_parse_reads_the_projects_env_file(write_project: Any, parse_cli: ParseCli) -> None:
    project = write_project({"dags/reads.py": READS_SETTINGS})
    placeholders = parse_cli(project, "--local", "--json").ok().json()
    assert by_path(placeholders)["dags/reads.py"]["placeholders"] == [
        "env API_REGION",
        "variable bucket",
    ]

    write(project, ".env", "AIRFLOW_VAR_BUCKET=landing\nAPI_REGION=eu\n")
    report = parse_cli(project, "--local", "--json").ok().json()
    result = by_path(report)["dags/reads.py"]
    assert result["cached"] is False  # the file's variables are part of the cache key
    assert result["placeholders"] == []
    assert result["dags"] == [{"dag_id": "reads_landing_eu", "tasks": 0}]

    other = write(project.parent, "ci.env", "AIRFLOW_VAR_BUCKET=ci\nAPI_REGION=us\n")
    named = parse_cli(project, "--local", "--json", "--env", other).ok().json()
    assert by_path(named)["dags/reads.py"]["dags"][0]["dag_id"] == "reads_ci_us"

    write(project, ".env", "AIRFLOW_VAR_BUCKET=landing\nthis line is broken\n")
    parse_cli(project, "--local").failed(".env:2: expected KEY=VALUE")
    parse_cli(project, "--local", "--env", project / "nope.env").failed("does not exist")


def test_the_env_files_import_timeout_is_the_default_timeout(
    write_project: Any, parse_cli: ParseCli
) -> None:
    project = write_project(
        {
            "dags/slow.py": """
                import time
                from airflow.sdk import DAG

                time.sleep(3)
                with DAG("slow", schedule=None):
                    pass
            """,
            ".env": "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=1\n",
        }
    )
    report = parse_cli(project, "--local", "--json")
    assert report.code == 1
    [error] = by_path(report.json())["dags/slow.py"]["errors"]
    assert error["kind"] == "timeout" and "took longer than 1s" in error["message"]


def test_tests_see_the_env_file_and_the_shell_wins(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, "dags/.keep", "")
    write(
        project,
        "tests/test_env.py",
        "import os\n\n\ndef test_env():\n"
        "    assert os.environ['FROM_FILE'] == 'file'\n"
        "    assert os.environ['FROM_BOTH'] == 'shell'\n",
    )
    write(project, ".env", "FROM_FILE=file\nFROM_BOTH=file\n")
    cli = Cli(None, None)
    cli("test", project, "--local", env={"FROM_BOTH": "shell"}).ok()
    failing = cli("test", project, "--local")  # FROM_BOTH is 'file' without the shell's value
    assert failing.code == 1 and "assert 'file' == 'shell'" in failing.out
    write(project, ".env", "FROM_FILE\n")
    cli("test", project, "--local").failed(".env:1: expected KEY=VALUE")
