"""One uv environment per Airflow 3 minor version dagship supports, built once per session.

Each environment is what ``dagship parse`` builds for a project whose dagship.yaml says
``airflow_version: "3.N"``: the newest patch release of that line, no requirements. Every test
of tests/compat (and the end-to-end deploy on Airflow 3.0, tests/airflow) that asks for the same
line shares it; pytest runs the tests of one line together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dagship.environment.build import Environment, ensure_environment
from tests.helpers import write

AIRFLOW_LINES = ("3.0", "3.1", "3.2", "3.3")


@dataclass(frozen=True)
class VersionedEnvironment:
    line: str  # "3.0"
    environment: Environment
    cache: Path  # the DAGSHIP_CACHE_DIR it lives in

    @property
    def version(self) -> str:
        return self.environment.airflow_version

    def project(self, root: Path, files: dict[str, str] | None = None) -> Path:
        """A project that runs on this environment: its dagship.yaml names the line, it has no
        requirements.txt (so ``dagship parse`` and ``dagship test`` find this environment)."""
        write(root, "dagship.yaml", f'airflow_version: "{self.line}"\n')
        (root / "requirements.txt").unlink(missing_ok=True)
        for relative, text in (files or {}).items():
            write(root, relative, text)
        return root


def environment_for(
    line: str, cache: Path, root: Path, requirements: str | None = None
) -> VersionedEnvironment:
    """The environment of Airflow ``line`` (with ``requirements``, the requirements.txt of a
    project that needs more), built in ``cache`` unless it is there."""
    project = root / f"airflow-{line}"
    write(project, "dagship.yaml", f'airflow_version: "{line}"\n')
    write(project, "dags/.airflowignore", "")
    if requirements is not None:
        write(project, "requirements.txt", requirements)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSHIP_CACHE_DIR", str(cache))
        environment = ensure_environment(project)
    assert environment.airflow_version.startswith(f"{line}."), environment
    return VersionedEnvironment(line, environment, cache)


@pytest.fixture(scope="session", params=AIRFLOW_LINES, ids=[f"airflow-{v}" for v in AIRFLOW_LINES])
def airflow_line(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def versioned(
    airflow_line: str, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> VersionedEnvironment:
    """The environment of ``airflow_line`` (built in the session's shared cache)."""
    return environment_for(airflow_line, shared_cache, tmp_path_factory.mktemp("versions"))


def dagship_link(root: Path) -> Path:
    """A folder holding only a ``dagship`` symlink to this dagship: on an environment's
    PYTHONPATH it makes dagship importable there and nothing else of this interpreter."""
    import dagship

    folder = root / "dagship-link"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "dagship"
    if not link.is_symlink():
        link.symlink_to(Path(dagship.__file__).resolve().parent, target_is_directory=True)
    return folder
