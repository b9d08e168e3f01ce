"""The checks ``dagship deploy`` runs before it uploads anything: parse, and the tests if asked.

By default the DAGs are parsed (``dagship parse``) before every deploy, DAG-only ones too: the
most frequent deploy is not the unchecked one. The parse is incremental: a file's result comes
from the parse cache while the file and what it imports are unchanged, so a one-file change
parses that file and the files that import it. ``--no-parse`` skips the check, and the deploy
records that it was skipped. A failed check blocks the deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagship.environment.errors import EnvironmentBuildError
from dagship.validate.errors import ValidateError

if TYPE_CHECKING:
    from dagship.environment.build import Environment
    from dagship.validate.parse import ParseReport
    from dagship.validate.pytest_runner import OutputLine

PASSED, SKIPPED, NOT_RUN = "passed", "skipped", "not-run"
NO_TESTS_COLLECTED = 5  # pytest's exit code

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CheckPlan:
    """What the user asked to check: ``parse`` False is ``--no-parse`` (None, the default, and
    True parse)."""

    parse: bool | None = None
    pytest: bool = False
    local: bool = False

    @property
    def parses(self) -> bool:
        """Whether the deploy is parsed: every deploy, of any kind, unless --no-parse."""
        return self.parse is not False

    @property
    def runs_anything(self) -> bool:
        """Whether a check runs at all (else ``run_checks`` only records them as skipped)."""
        return self.parses or self.pytest


class DeployBlocked(ValidateError):
    """A check failed or could not run, so the deploy was not made (nothing was uploaded).

    ``report`` is the parse report when the parse check failed, for the same output as
    ``dagship parse``; ``checks`` is where each check stood.
    """

    def __init__(
        self, message: str, kind: str, checks: dict[str, str], report: ParseReport | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.checks = checks
        self.report = report


def run_checks(
    project: Path,
    kind: str,
    plan: CheckPlan,
    *,
    on_progress: Progress | None = None,
    on_test_output: OutputLine | None = None,
) -> dict[str, str]:
    """Run the checks ``plan`` asks for before a deploy of ``kind``; return them for the deploy
    record (``{"parse": "passed", "pytest": "not-run"}``), or raise DeployBlocked."""
    checks = {"parse": SKIPPED if plan.parse is False else NOT_RUN, "pytest": NOT_RUN}
    parse = plan.parses
    if not plan.runs_anything:
        return checks
    progress = on_progress or (lambda message: None)
    environment = _environment(project, kind, plan, checks, progress)
    if parse:
        checks["parse"] = _parse_check(project, environment, kind, checks, progress)
    if plan.pytest:
        checks["pytest"] = _pytest_check(
            project, environment, kind, checks, progress, on_test_output
        )
    return checks


def _parse_check(
    project: Path, environment: Environment, kind: str, checks: dict[str, str], progress: Progress
) -> str:
    """PASSED when the DAGs parse without errors, else DeployBlocked with the report."""
    from dagship.validate.parse import parse_project

    progress("Parsing the DAGs before deploying…")
    try:
        report = parse_project(project, environment)
    except ValidateError as exc:
        raise DeployBlocked(
            f"deploy blocked: the parse check could not run: {exc}\nTo deploy anyway, "
            f"pass --no-parse (the deploy records that it was skipped)",
            kind,
            checks,
        ) from exc
    if not report.ok:
        raise DeployBlocked(
            f"deploy blocked: {_errors(report)} (see the report); fix them and deploy "
            "again, or pass --no-parse to deploy without the check (the deploy records "
            "that it was skipped)",
            kind,
            {**checks, "parse": "failed"},
            report,
        )
    progress(
        f"Parse check passed: {_count(len(report.files), 'DAG file')}, "
        f"{_count(report.dag_count, 'DAG')}, no errors"
    )
    return PASSED


def _pytest_check(
    project: Path,
    environment: Environment,
    kind: str,
    checks: dict[str, str],
    progress: Progress,
    on_test_output: OutputLine | None,
) -> str:
    """PASSED when the project's tests pass, else DeployBlocked."""
    from dagship.validate.pytest_runner import run_tests

    progress("Running the project's tests before deploying…")
    try:
        code = run_tests(project, environment, on_output=on_test_output)
    except ValidateError as exc:
        raise DeployBlocked(
            f"deploy blocked: the tests could not run: {exc}\nTo deploy without them, "
            "leave out --pytest",
            kind,
            {**checks, "pytest": "failed"},
        ) from exc
    if code != 0:
        raise DeployBlocked(
            f"deploy blocked: {_pytest_failure(code)}; fix them and deploy again (run "
            "them with `dagship test`), or deploy without --pytest",
            kind,
            {**checks, "pytest": "failed"},
        )
    return PASSED


def _environment(
    project: Path, kind: str, plan: CheckPlan, checks: dict[str, str], progress: Progress
) -> Environment:
    from dagship.environment.build import ensure_environment

    try:
        return ensure_environment(project, local=plan.local, on_progress=progress)
    except (EnvironmentBuildError, ValidateError) as exc:
        ways = [] if plan.local else ["pass --local to check with the Airflow next to dagship"]
        if plan.parses:
            ways.append("pass --no-parse to deploy without parsing (the deploy records it)")
        if plan.pytest:
            ways.append("leave out --pytest")
        raise DeployBlocked(
            f"deploy blocked: the checks could not run: {exc}\nTo deploy anyway, "
            + "; or ".join(ways),
            kind,
            checks,
        ) from exc


def _errors(report: ParseReport) -> str:
    files = {path for path, _ in report.errors}
    return f"{_count(len(files), 'DAG file')} failed to parse"


def _pytest_failure(code: int) -> str:
    if code == NO_TESTS_COLLECTED:
        return "pytest collected no tests (exit code 5, output above)"
    return f"the project's tests failed (pytest exit code {code}, output above)"


def _count(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
