"""``dagship test``: the project's tests, run with pytest in the deployment's environment.

The tests see the project as Airflow sees it in an Astro image: the project root is the working
directory, ``AIRFLOW_HOME`` and on ``sys.path`` (so ``import include.helpers`` works), as are the
dags folder and ``plugins/``. Airflow keeps its files in a throwaway folder (its config file, its
own SQLite file, no example DAGs, ``[core] dags_folder`` pointing at the project's ``dags/``),
so a test that builds a ``DagBag()`` reads the project's DAGs. A pytest plugin
(``pytest_compat.py``) lets Astro's example test run unchanged on Airflow 3.2 and later. The
user's environment variables and those of the project's ``.env`` apply, as they do for
``dagship parse``, except the settings that would point at another Airflow: its home, its
config file and its metadata database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagship.environment.airflow import airflow_environment
from dagship.validate.env_file import project_variables, with_variables
from dagship.validate.errors import ValidateError

if TYPE_CHECKING:
    from dagship.environment.build import Environment

TESTS_FOLDER = "tests"
# validate/pytest_compat.py, loaded into pytest under this name.
PLUGIN = "dagship_pytest_compat"

# Called with each line pytest prints (with its newline).
OutputLine = Callable[[str], None]


@dataclass(frozen=True)
class TestRun:
    """What ``dagship test`` did: pytest's exit code, in which environment."""

    __test__ = False  # not a pytest test class

    code: int
    environment: Environment
    pytest_args: list[str]


def run_project_tests(
    project: Path,
    pytest_args: Sequence[str] = (),
    *,
    local: bool = False,
    on_progress: Callable[[str], None] | None = None,
    on_output: OutputLine | None = None,
    color: bool = False,
    env_file: Path | None = None,
) -> TestRun:
    """``dagship test``: find the tests, get the deployment's environment, run pytest."""
    from dagship.environment.build import ensure_environment

    project = Path(project).resolve()
    # A project without tests or with a bad env file fails before a build.
    args = pytest_arguments(project, pytest_args)
    variables = project_variables(project, env_file)
    environment = ensure_environment(project, local=local, on_progress=on_progress)
    code = _run(project, environment, args, variables, on_output, color)
    return TestRun(code, environment, list(pytest_args))


def run_tests(
    project: Path,
    environment: Environment,
    pytest_args: Sequence[str] = (),
    *,
    on_output: OutputLine | None = None,
    color: bool = False,
    env_file: Path | None = None,
) -> int:
    """Run pytest on the project's ``tests/`` (or what ``pytest_args`` name); pytest's exit code.

    pytest's output goes to this process's stdout and stderr, or line by line to
    ``on_output`` when given (then ``color`` keeps pytest's colours in the piped output). The
    tests see the variables of ``env_file`` (default: the project's ``.env``, if there) that
    this process's environment does not set.
    """
    project = Path(project).resolve()
    args = pytest_arguments(project, pytest_args)
    variables = project_variables(project, env_file)
    return _run(project, environment, args, variables, on_output, color)


def pytest_arguments(project: Path, pytest_args: Sequence[str]) -> list[str]:
    """pytest's arguments: ``pytest_args``, after ``tests`` unless they name tests themselves."""
    args = list(pytest_args)
    if _names_tests(project, args):
        return args
    if not (project / TESTS_FOLDER).is_dir():
        raise ValidateError(
            f"{project} has no {TESTS_FOLDER}/ folder to test: add your tests there "
            f"(`dagship init` writes tests/dags/test_dag_example.py), or name the tests "
            f"to run after `--`, e.g. `dagship test -- path/to/test_file.py`"
        )
    return [TESTS_FOLDER, *args]


def _run(
    project: Path,
    environment: Environment,
    args: list[str],
    variables: Mapping[str, str],
    on_output: OutputLine | None,
    color: bool,
) -> int:
    if on_output is not None and color and not any(a.startswith("--color") for a in args):
        args = [*args, "--color=yes"]
    _check_pytest(environment)
    with tempfile.TemporaryDirectory(prefix="dagship-test-") as scratch:
        command = [str(environment.python), "-m", "pytest", "-p", PLUGIN, *args]
        env = _test_environment(project, Path(scratch), variables)
        if on_output is None:
            return subprocess.call(command, cwd=project, env=env, stdin=subprocess.DEVNULL)
        with subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                on_output(line)
        return proc.returncode


def _test_environment(project: Path, scratch: Path, variables: Mapping[str, str]) -> dict[str, str]:
    """The project's Airflow environment, with Airflow's files in ``scratch`` but
    ``AIRFLOW_HOME`` the project, as in an Astro image (/usr/local/airflow): tests that name
    files relative to it (Astro's ``os.path.relpath(path, AIRFLOW_HOME)``) see ``dags/a.py``.
    Airflow writes nothing there: its config file, database and logs are in ``scratch``. The
    compatibility plugin is importable from ``scratch`` (dagship is not installed in the
    environment)."""
    env = airflow_environment(scratch, project, with_variables(variables))
    env["AIRFLOW_HOME"] = str(project)
    env["AIRFLOW_CONFIG"] = str(scratch / "airflow.cfg")
    plugins = scratch / "pytest-plugins"
    plugins.mkdir()
    shutil.copyfile(Path(__file__).with_name("pytest_compat.py"), plugins / f"{PLUGIN}.py")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(plugins)]))
    return env


def _names_tests(project: Path, args: Sequence[str]) -> bool:
    """Whether ``args`` name a test file or folder (``path``, ``path::test``) themselves."""
    for arg in args:
        if arg.startswith("-"):
            continue
        path = Path(arg.split("::", 1)[0])
        if (path if path.is_absolute() else project / path).exists():
            return True
    return False


def _check_pytest(environment: Environment) -> None:
    # `python -m pytest` without pytest exits 1, like failing tests: tell the two apart here.
    found = subprocess.run(
        [str(environment.python), "-c", "import pytest"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        where = (
            "this Python environment (`pip install pytest`)"
            if environment.location is None
            else "the project's requirements.txt"
        )
        raise ValidateError(
            f"pytest is not installed in {environment.python}: add it to {where} "
            "and run `dagship test` again"
        )
