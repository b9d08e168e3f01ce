"""Fixtures for the parse tests: Airflow projects written file by file, the CLI, a cache folder.

Most parse tests use ``--local`` (the test interpreter has Apache Airflow 3.3.2); the
environment tests build real uv environments in one cache folder shared by the session
(``shared_cache``, in tests/conftest.py).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.helpers import Cli, Result

WriteProject = Callable[[Mapping[str, str]], Path]


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """``write_project({"dags/a.py": "..."})``: a project folder with those files."""

    def write(files: Mapping[str, str]) -> Path:
        return write_files(tmp_path / "project", files)

    return write


ParseCli = Callable[..., Result]


@pytest.fixture
def parse_cli(tmp_path: Path) -> ParseCli:
    """Run the real ``dagship parse`` with a cache folder private to the test (``idle=N``
    leaves the forkserver running for N seconds, as users get by default)."""
    cache = tmp_path / "cache"

    def run(*args: str | Path, cache_dir: Path | None = None, idle: int = 0) -> Result:
        # By default no forkserver outlives the command: tests leave nothing running.
        env = {"DAGSHIP_CACHE_DIR": str(cache_dir or cache), "DAGSHIP_PARSE_SERVER_IDLE": str(idle)}
        return Cli(None, None)("parse", *args, env=env)

    return run


def by_path(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f["path"]: f for f in report["files"]}
