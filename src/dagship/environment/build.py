"""The deployment's Python environment: the Airflow version and requirements the project runs
with.

The Airflow version comes from ``dagship.yaml`` (``airflow_version``), else from the
Dockerfile's ``FROM`` line: an official ``apache/airflow:X`` image or an Astro Runtime image.
dagship builds a virtual environment with uv holding that Airflow, the project's
``requirements.txt`` and pytest, under ``$DAGSHIP_CACHE_DIR/envs/`` (default
``~/.cache/dagship``), keyed by a hash of what it was built from (the Airflow and Python
versions, ``requirements.txt`` with the files and local packages it names, read as pip reads it
by ``requirements.py``, and uv's index settings): an unchanged project reuses it, a change to
any of these gets a new one. The build runs under a file lock and writes
its completion marker last, so a half-built environment is never used. Each use touches the
marker; after a build, environments not used for ``UNUSED_DAYS`` are removed. ``local=True``
uses the current interpreter instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dagship.environment.errors import EnvironmentBuildError
from dagship.environment.requirements import Requirements, read_requirements, uv_settings
from dagship.files import cache_dir, write_atomic
from dagship.project.config import load_config

# Bump when the way environments are built changes, so that old ones are not reused.
ENV_FORMAT = "2"
MARKER = ".dagship-environment.json"
UNUSED_DAYS = 30
ASK_FOR_VERSION = "add `airflow_version: 3.3.2` (your deployment's version) to dagship.yaml"
MIGRATE_CHECK = "`dagship migrate-check` lists what the project's code needs for Airflow 3"
# Astro Runtime 3 tags are <Airflow major.minor>-<Runtime release>, e.g. 3.1-12: the Airflow
# line is in the tag. These are the lines published so far; dagship installs the newest patch
# release of the line unless dagship.yaml pins airflow_version.
RUNTIME_AIRFLOW_LINES = {"3.0": "3.0", "3.1": "3.1", "3.2": "3.2", "3.3": "3.3"}
RUNTIME_REPOSITORIES = ("quay.io/astronomer/astro-runtime", "astrocrpublic.azurecr.io/runtime")
OFFICIAL_REPOSITORIES = ("apache/airflow", "docker.io/apache/airflow")
_OFFICIAL_TAG = re.compile(
    r"^(?:slim-)?(?P<airflow>\d+\.\d+\.\d+)(?:-python(?P<python>\d+\.\d+))?$"
)
_RUNTIME3_TAG = re.compile(
    r"^(?P<line>\d+\.\d+)-(?P<release>\d+)(?:-python-(?P<python>\d+\.\d+))?(?:-base|-slim)?$"
)
_RUNTIME2_TAG = re.compile(r"^(?P<major>\d{1,2})\.\d+\.\d+")
_PROGRESS = (
    "Using Python ",
    "Resolved ",
    "Prepared ",
    "Downloading ",
    "Downloaded ",
    "Installed ",
    "Uninstalled ",
    "Bytecode ",
)

_METADATA_FOLDERS = (".dist-info", ".egg-info")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Environment:
    """An interpreter with Airflow, the project's requirements and pytest."""

    python: Path
    airflow_version: str
    # The virtual environment; None when the current interpreter is used (--local).
    location: Path | None
    # Hash of what the environment was built from (part of the parse cache key).
    key: str
    # True when an existing environment was reused rather than built.
    reused: bool


@dataclass(frozen=True)
class AirflowImage:
    """What a Dockerfile's base image says: an Airflow version (or line) and maybe Python."""

    airflow: str
    python: str | None = None


def project_airflow_version(project: Path) -> str:
    """The Airflow version the project deploys to: dagship.yaml, else the Dockerfile."""
    return _project_image(project).airflow


def image_airflow(image: str) -> AirflowImage:
    """The Airflow version of a base image reference; EnvironmentBuildError for an unknown
    image."""
    name, tag = _split_image(image)
    if name in OFFICIAL_REPOSITORIES:
        match = _OFFICIAL_TAG.match(tag)
        if match and match["airflow"].startswith("3."):
            return AirflowImage(match["airflow"], match["python"])
        if match:
            raise EnvironmentBuildError(
                f"{image} runs Airflow {match['airflow']}; dagship validates Airflow 3 projects: "
                f"upgrade the image or {ASK_FOR_VERSION} ({MIGRATE_CHECK})"
            )
    if name in RUNTIME_REPOSITORIES:
        match = _RUNTIME3_TAG.match(tag)
        if match and match["line"] in RUNTIME_AIRFLOW_LINES:
            return AirflowImage(RUNTIME_AIRFLOW_LINES[match["line"]], match["python"])
        if _RUNTIME2_TAG.match(tag):
            raise EnvironmentBuildError(
                f"{image} is an Astro Runtime image for Airflow 2; dagship validates Airflow 3 "
                f"projects: use an Astro Runtime 3 image (e.g. {RUNTIME_REPOSITORIES[1]}:3.1-12) "
                f"or {ASK_FOR_VERSION} ({MIGRATE_CHECK})"
            )
    raise EnvironmentBuildError(
        f"cannot tell which Airflow version the image {image} runs: {ASK_FOR_VERSION}"
    )


def astro_runtime_tag(image: str) -> str | None:
    """The tag of an Astro Runtime image reference (``12.8.0``, ``3.1-12``); None for any
    other image."""
    name, tag = _split_image(image)
    return tag if name in RUNTIME_REPOSITORIES else None


def project_base_image(project: Path) -> str | None:
    """The base image of the project's Dockerfile (its last ``FROM``), None without one."""
    dockerfile = project / "Dockerfile"
    return _base_image(dockerfile) if dockerfile.is_file() else None


def _split_image(image: str) -> tuple[str, str]:
    """``(repository, tag)`` of an image reference, the repository lower-cased, no digest."""
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return name.split("@")[0].lower(), tag.split("@")[0]


def _project_image(project: Path) -> AirflowImage:
    config = load_config(project)
    image = project_base_image(project)
    if config.airflow_version:
        python = None
        with contextlib.suppress(EnvironmentBuildError):
            python = image_airflow(image).python if image else None
        return AirflowImage(config.airflow_version, python)
    if image is None:
        raise EnvironmentBuildError(
            f"{project} has no Dockerfile with a FROM line and no airflow_version in "
            f"dagship.yaml, so the Airflow version is unknown: {ASK_FOR_VERSION}"
        )
    return image_airflow(image)


def _base_image(dockerfile: Path) -> str | None:
    """The image of the last ``FROM`` line (the final stage of a multi-stage build)."""
    image = None
    for line in dockerfile.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            rest = [w for w in words[1:] if not w.startswith("--")]
            image = rest[0] if rest else None
    return image


def ensure_environment(
    project: Path, *, local: bool = False, on_progress: Progress | None = None
) -> Environment:
    """The project's environment: reused when it exists, else built with uv (or --local)."""
    if local:
        return _local_environment()
    image = _project_image(project)
    requirements = read_requirements(project)
    python = image.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    key = _hash(
        {
            "format": ENV_FORMAT,
            "airflow": image.airflow,
            "python": python,
            "req": requirements.key_data() if requirements else None,
            "uv": uv_settings(os.environ),
        }
    )
    location = cache_dir() / "envs" / key[:20]
    existing = _finished(location)
    if existing is not None:
        _mark_used(location)
        return Environment(_python_of(location), existing, location, key, reused=True)
    location.parent.mkdir(parents=True, exist_ok=True)
    with _locked(location.with_name(location.name + ".lock")):
        existing = _finished(location)  # another dagship may have built it meanwhile
        if existing is not None:
            return Environment(_python_of(location), existing, location, key, reused=True)
        if on_progress:
            on_progress(
                f"Building the environment (Airflow {image.airflow}, Python {python}"
                f"{', requirements.txt' if requirements else ''}) in {location}"
            )
        version = _build(project, location, image.airflow, python, requirements, on_progress)
    remove_unused_environments(location.parent, keep=location)
    return Environment(_python_of(location), version, location, key, reused=False)


def remove_unused_environments(
    envs: Path, *, keep: Path, unused_days: float = UNUSED_DAYS
) -> list[Path]:
    """Remove the environments under ``envs`` not used for ``unused_days`` (and builds that
    never finished, by their folder's age), except ``keep`` and any being built; the removed."""
    cutoff = time.time() - unused_days * 86400
    removed = []
    for location in sorted(envs.iterdir()):
        unused = location.is_dir() and location != keep and _last_used(location) < cutoff
        if unused and _remove(location, cutoff):
            removed.append(location)
    return removed


def _last_used(location: Path) -> float:
    for path in (location / MARKER, location):
        with contextlib.suppress(OSError):
            return path.stat().st_mtime
    return time.time()


def _mark_used(location: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(location / MARKER)


def _remove(location: Path, cutoff: float) -> bool:
    with location.with_name(location.name + ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being built right now
        if _last_used(location) >= cutoff:
            return False  # used meanwhile
        with contextlib.suppress(FileNotFoundError):
            (location / MARKER).unlink()  # first: a half-removed environment is never used
        shutil.rmtree(location, ignore_errors=True)
    return True


def _local_environment() -> Environment:
    if importlib.util.find_spec("airflow") is None:
        raise EnvironmentBuildError(
            f"--local needs Apache Airflow in this interpreter ({sys.executable}): install it "
            "with `pip install 'dagship[airflow]'`, or drop --local to let dagship build the "
            "deployment's environment"
        )
    from importlib import metadata  # here: importing it costs every CLI start ~8 ms

    version = metadata.version("apache-airflow")
    key = _hash({"format": ENV_FORMAT, "python": sys.executable, "installed": _installed()})
    return Environment(Path(sys.executable), version, None, key, reused=True)


def _installed() -> list[str]:
    """What is installed in this interpreter, read cheaply: the names of the packages'
    metadata folders, which hold each package's name and version (``pendulum-3.1.0.dist-info``).
    Reading every package's metadata instead takes a few hundred milliseconds per deploy."""
    found: list[str] = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            found.extend(
                name for name in os.listdir(entry or ".") if name.endswith(_METADATA_FOLDERS)
            )
    return sorted(found)


def _hash(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _python_of(location: Path) -> Path:
    return location / "bin" / "python"


def _finished(location: Path) -> str | None:
    """The Airflow version of a completely built environment, None if absent or half-built."""
    try:
        marker = json.loads((location / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = marker.get("airflow_version") if isinstance(marker, dict) else None
    return version if isinstance(version, str) and _python_of(location).exists() else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise EnvironmentBuildError(
            "uv is needed to build the deployment's environment: install it with "
            "`pip install uv` (or use --local to parse with this interpreter's Airflow)"
        )
    return uv


def _build(
    project: Path,
    location: Path,
    airflow: str,
    python: str,
    requirements: Requirements | None,
    on_progress: Progress | None = None,
) -> str:
    uv = _uv()
    if location.exists():
        shutil.rmtree(location)  # a build that stopped half-way
    venv = [uv, "venv", "--quiet", "--no-python-downloads", str(location)]
    done = _run([*venv, "--python", python], project)
    if done.returncode != 0:
        # The image's Python is not on this machine: the current interpreter is the next best.
        done = _run([*venv, "--python", sys.executable], project)
        if done.returncode != 0:
            raise EnvironmentBuildError(
                f"could not create a virtual environment with uv:\n{done.stderr}"
            )
    staging = location.with_name(location.name + ".requirements")
    try:
        _install(uv, project, location, airflow, requirements, staging, on_progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    version = _check_airflow_imports(project, location, airflow)
    # Written last: the environment is complete.
    write_atomic(location / MARKER, json.dumps({"airflow_version": version}))
    return version


def _install(
    uv: str,
    project: Path,
    location: Path,
    airflow: str,
    requirements: Requirements | None,
    staging: Path,
    on_progress: Progress | None = None,
) -> None:
    """Install Airflow, pytest and the requirements; uv's own message when they do not.
    ``on_progress`` gets uv's progress lines (resolved, downloaded, installed) as they come."""
    spec = (
        f"apache-airflow=={airflow}" if airflow.count(".") >= 2 else f"apache-airflow=={airflow}.*"
    )
    # No uv configuration file takes part: what is installed follows from the project and
    # the UV_* variables that are part of the environment's key.
    install = [uv, "pip", "install", "--compile-bytecode", "--no-config"]
    install += ["--python", str(_python_of(location)), spec, "pytest"]
    if requirements is not None:
        top = requirements.write_for_uv(staging)
        install += [*requirements.uv_options, "-r", str(top)]
    done = _run_with_progress(install, project, on_progress)
    if done.returncode == 0:
        return
    shutil.rmtree(location, ignore_errors=True)
    explanation = (done.stderr or done.stdout).strip()
    # uv names the files it read: the project's, as far as the user is concerned.
    for copy in (staging / "requirements", staging / "project"):
        explanation = explanation.replace(str(copy), str(project))
    if "No solution found" in explanation or "unsatisfiable" in explanation:
        raise EnvironmentBuildError(
            f"dependency conflict: apache-airflow {airflow} and requirements.txt cannot be "
            f"installed together.\n{explanation}\nChange requirements.txt (or "
            "airflow_version in dagship.yaml) and run again."
        )
    raise EnvironmentBuildError(
        f"could not install apache-airflow {airflow} and requirements.txt:\n{explanation}"
    )


def _check_airflow_imports(project: Path, location: Path, airflow: str) -> str:
    """The installed Airflow's version, once it imports.

    Installed is not importable: without Airflow's constraints file (published outside the
    package registry), an older Airflow may get a newer dependency it cannot import."""
    check = "import airflow, importlib.metadata as m; print(m.version('apache-airflow'))"
    done = _run([str(_python_of(location)), "-c", check], project)
    if done.returncode != 0:
        shutil.rmtree(location, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise EnvironmentBuildError(
            f"apache-airflow {airflow} was installed but does not import: {last}\n"
            "A dependency resolved to a release newer than this Airflow supports: pin it in "
            "requirements.txt to the version Airflow's constraints file names (for Airflow "
            "3.1.0: `structlog==25.4.0`), or use a newer airflow_version."
        )
    return done.stdout.strip().splitlines()[-1]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def _run_with_progress(
    command: list[str], cwd: Path, on_progress: Progress | None
) -> subprocess.CompletedProcess[str]:
    """Run a uv command, giving each of its progress lines to ``on_progress`` as it comes;
    its output (stdout and stderr, in order) is the result's ``stderr``."""
    lines = []
    with subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if not _is_progress(line):
                lines.append(line)
            elif on_progress is not None:
                on_progress(f"  uv: {line.strip()}")
    return subprocess.CompletedProcess(command, process.returncode, "", "".join(lines))


def _is_progress(line: str) -> bool:
    """uv's progress lines: "Resolved 152 packages in 3.1s", "Downloading apache-airflow-core
    (4.2MiB)", "Installed 152 packages in 2.0s", "Bytecode compiled …"; not the package list
    that follows (" + pendulum==3.1.0"), nor its errors."""
    return line.lstrip().startswith(_PROGRESS)
