"""``parse_project``: import every DAG file of a project the way Airflow's DAG processor does.

The files are the ones Airflow would parse (``dags/.airflowignore``, the safe-mode heuristic),
less those listed in ``.astro/dag_integrity_exceptions.txt`` or
``.dagship/parse_exceptions.txt``. Each is imported by Airflow's own DagBag in a pool of
workers running the deployment's environment, with placeholders for Variables, Connections and
environment variables read at parse time; results of unchanged files come from the parse cache.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagship.environment.airflow import airflow_environment
from dagship.environment.build import Environment
from dagship.files import cache_dir
from dagship.validate import error_hints, parse_pool
from dagship.validate.env_file import project_variables, with_variables
from dagship.validate.errors import ValidateError
from dagship.validate.parse_cache import (
    ParseCache,
    airflow_settings,
    combined_digest,
    data_digest,
    entry_key,
    file_digest,
    project_file_digests,
    shared_code_digest,
    startup_code_digest,
    worker_digest,
)
from dagship.validate.parse_deps import ImportGraph, python_files
from dagship.validate.parse_pool import Forkserver, WorkerError, run_pool
from dagship.validate.parse_warnings import ParseWarning, parse_warning
from dagship.validate.serialization import serialization_error
from dagship.validate.tracebacks import cut

DEFAULT_TIMEOUT = 30.0  # Airflow's [core] dagbag_import_timeout default
EXCEPTION_FILES = (".astro/dag_integrity_exceptions.txt", ".dagship/parse_exceptions.txt")
_DB_MARKERS = (
    "Direct database access via the ORM is not allowed",
    "Database access is disabled from Dags",
    "Access to the Airflow Metadatabase from dags is not allowed",
    "airflow-db-not-allowed",
    "db-access-blocked",
)


@dataclass
class DagInfo:
    dag_id: str
    tasks: int


@dataclass
class ParseError:
    # syntax | import | serialization | timeout | metadata-database | cycle | duplicate-dag-id |
    # crash | error
    kind: str
    message: str
    traceback: str
    line: int | None = None


@dataclass
class FileResult:
    path: str  # relative to the project, e.g. dags/etl.py
    dags: list[DagInfo] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    seconds: float = 0.0  # import time (as measured when it was parsed, for cached files)
    cached: bool = False
    placeholders: list[str] = field(default_factory=list)
    warnings: list[ParseWarning] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return sum(dag.tasks for dag in self.dags)


@dataclass
class ParseReport:
    project: str
    airflow_version: str
    python: str
    environment_reused: bool
    files: list[FileResult]
    skipped: list[str]  # listed in an exceptions file
    workers: int
    # True when the workers came from a forkserver left running by an earlier parse.
    forkserver_reused: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[tuple[str, ParseError]]:
        return [(result.path, error) for result in self.files for error in result.errors]

    @property
    def dag_count(self) -> int:
        return sum(len(result.dags) for result in self.files)

    @property
    def warning_count(self) -> int:
        return sum(len(result.warnings) for result in self.files)

    def slowest(self, count: int = 5) -> list[FileResult]:
        return sorted(self.files, key=lambda r: r.seconds, reverse=True)[:count]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["dag_count"] = self.dag_count
        data["cached_files"] = sum(1 for r in self.files if r.cached)
        data["error_count"] = len(self.errors)
        data["warning_count"] = self.warning_count
        return data


def parse_project(
    project: Path,
    environment: Environment,
    *,
    jobs: int | None = None,
    timeout: float | None = None,
    use_cache: bool = True,
    env_file: Path | None = None,
) -> ParseReport:
    """Parse every DAG file of ``project`` in ``environment``; errors are in the report.

    The DAG files see this process's environment variables plus those of ``env_file`` (default:
    the project's ``.env``, if there) that it does not set."""
    started = time.perf_counter()
    project = project.resolve()
    if not (project / "dags").is_dir():
        raise ValidateError(
            f"{project} has no dags/ folder: run `dagship parse` on an Airflow project"
        )
    variables = project_variables(project, env_file)
    base = with_variables(variables)
    timeout = _timeout(timeout, base)
    settings = json.dumps(airflow_settings(base))
    worker = worker_digest()
    startup = startup_code_digest(project)
    # Everything the forkserver's own state depends on; a running one with it is reused.
    identity = entry_key(str(project), environment.key, worker, settings, startup)
    with _forkserver(project, environment, timeout, base, identity) as forkserver:
        # While the forkserver lists the files (and imports Airflow), hash them, read the cache.
        digests = project_file_digests(project)
        cache = ParseCache(cache_dir() / "parse", project)
        listed = [Path(p) for p in forkserver.list_files()]
        files = _not_excepted(project, listed)
        context = [environment.key, startup, data_digest(digests), worker, settings]
        graph = ImportGraph(project, python_files(digests), cache)
        shared = shared_code_digest(python_files(digests), (_relative(p, project) for p in listed))
        keys = _cache_keys(
            project, files, digests, graph, [shared, *context, json.dumps(variables)]
        )
        results = _cached_results(cache, keys) if use_cache else {}
        todo = [path for path in files if path not in results]
        workers = min(jobs or os.cpu_count() or 1, len(todo))
        if todo:
            parsed = _parse_files(project, forkserver, todo, workers, timeout)
            results.update(parsed)
            _cache_results(cache, keys, parsed)
        cache.save(list(keys.values()))
    ordered = [results[path] for path in files]
    _report_duplicates(ordered)
    return ParseReport(
        project=str(project),
        airflow_version=environment.airflow_version,
        python=str(environment.python),
        environment_reused=environment.reused,
        files=ordered,
        skipped=[_relative(p, project) for p in listed if p not in keys],
        workers=workers,
        forkserver_reused=forkserver.reused,
        seconds=time.perf_counter() - started,
    )


def _cache_keys(
    project: Path,
    files: list[Path],
    digests: Mapping[str, str],
    graph: ImportGraph,
    context: list[str],
) -> dict[Path, str]:
    """Each file's parse cache key: its path, its content, the project modules it imports and
    the ``context`` it parses in (``context[0]``, the digest of all shared Python code, stands
    for the modules of a file that imports by computed name)."""
    shared, rest = context[0], entry_key(*context[1:])  # once: the settings may be long
    keys = {}
    for path in files:
        relative = _relative(path, project)
        digest = digests.get(relative) or file_digest(path)  # e.g. through a symlink
        found = graph.dependencies(relative, digest)
        imported = shared if found is None else combined_digest(found)
        keys[path] = entry_key(relative, digest, imported, rest)
    return keys


def _cached_results(cache: ParseCache, keys: Mapping[Path, str]) -> dict[Path, FileResult]:
    results = {}
    for path, key in keys.items():
        entry = cache.get(key)
        if entry is not None:
            results[path] = _from_dict(entry, cached=True)
    return results


def _parse_files(
    project: Path, forkserver: Forkserver, todo: list[Path], workers: int, timeout: float
) -> dict[Path, FileResult]:
    answers = _run_workers(forkserver, todo, workers, timeout)
    return {path: _file_result(project, answers[str(path)], timeout) for path in todo}


def _cache_results(
    cache: ParseCache, keys: Mapping[Path, str], results: Mapping[Path, FileResult]
) -> None:
    for path, result in results.items():
        # A timeout or a crash may not happen next time (a busy machine): parse it again.
        if not any(e.kind in ("timeout", "crash") for e in result.errors):
            cache.put(keys[path], asdict(result))


def _relative(path: Path, project: Path) -> str:
    return path.relative_to(project).as_posix()


@contextlib.contextmanager
def _forkserver(
    project: Path, environment: Environment, timeout: float, base: Mapping[str, str], identity: str
) -> Iterator[Forkserver]:
    """The forkserver named ``identity``: found running, or started."""
    idle = forkserver_idle()
    home = _forkserver_home(identity) if idle > 0 else Path(tempfile.mkdtemp(prefix="dagship-"))
    dags = project / "dags"
    env = _worker_env(base, project, home / "airflow-home", timeout)
    forkserver = None
    try:
        forkserver = Forkserver(environment.python, project, dags, env, home, idle)
        yield forkserver
    except WorkerError as exc:
        raise ValidateError(
            f"the parse worker could not start with {environment.python} "
            f"(Airflow {environment.airflow_version}):\n{str(exc).strip()[-3000:]}"
        ) from exc
    finally:
        if forkserver is not None:
            forkserver.close()
        if idle <= 0:
            shutil.rmtree(home, ignore_errors=True)


def _timeout(requested: float | None, env: Mapping[str, str]) -> float:
    """The import timeout: ``requested``, else the environment's Airflow setting or 30 s."""
    timeout = requested if requested is not None else _default_timeout(env)
    if timeout <= 0:
        raise ValidateError("--timeout must be a positive number of seconds")
    return timeout


def _default_timeout(env: Mapping[str, str]) -> float:
    configured = env.get("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT")
    try:
        return float(configured) if configured else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _not_excepted(project: Path, listed: list[Path]) -> list[Path]:
    """The files of ``listed`` that no exceptions file leaves out of the check."""
    patterns = _exception_patterns(project)
    return [path for path in listed if not _matches(_relative(path, project), patterns)]


def _exception_patterns(project: Path) -> list[str]:
    patterns = []
    for name in EXCEPTION_FILES:
        path = project / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            entry = line.split("#", 1)[0].strip()
            if entry:
                patterns.append(entry.removeprefix("./"))
    return patterns


def _matches(relative: str, patterns: list[str]) -> bool:
    # Entries are paths from the project root (dags/x.py, as Astro's file has them) or globs;
    # a path relative to dags/ is accepted too.
    in_dags = relative.removeprefix("dags/")
    return any(
        fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(in_dags, p) for p in patterns
    )


def _worker_env(
    base: Mapping[str, str], project: Path, home: Path, timeout: float
) -> dict[str, str]:
    """The project's Airflow environment, with the parse's own settings: Airflow's import
    timeout, full tracebacks, only errors logged, and no bytecode written into the project."""
    env = airflow_environment(home, project, base)
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": f"{timeout:g}",
            "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "True",
            "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH": "100",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
    )
    return env


def forkserver_idle() -> float:
    """Seconds the forkserver waits for the next parse: ``$DAGSHIP_PARSE_SERVER_IDLE``, else
    120 (0 in CI, where nothing parses the same project twice)."""
    configured = os.environ.get("DAGSHIP_PARSE_SERVER_IDLE")
    try:
        return max(0.0, float(configured)) if configured else (0.0 if os.environ.get("CI") else 120)
    except ValueError:
        return 120.0


def forkserver_base() -> Path:
    """Where forkservers keep their sockets: under the temporary folder, not the cache, because
    Unix socket paths are limited to about 100 bytes."""
    return Path(tempfile.gettempdir()) / f"dagship-parse-{os.getuid()}"


def stop_forkservers(project: Path) -> int:
    """Stop the forkservers left running for ``project``; the number stopped."""
    return parse_pool.stop_forkservers(forkserver_base(), project.resolve())


def _forkserver_home(identity: str) -> Path:
    base = forkserver_base()
    base.mkdir(mode=0o700, exist_ok=True)
    return base / identity[:16]


def _run_workers(
    forkserver: Forkserver, todo: list[Path], workers: int, timeout: float
) -> dict[str, dict[str, Any]]:
    """The workers' answer for each file."""
    answers: dict[str, dict[str, Any]] = {}

    def collect(path: str, answer: dict[str, Any]) -> None:
        answers[path] = answer

    run_pool(
        [str(p) for p in sorted(todo, key=_size, reverse=True)],
        workers=workers,
        timeout=timeout,
        forkserver=forkserver,
        on_result=collect,
    )
    return answers


def _size(path: Path) -> int:
    """A file's size: the largest files go first, so that no worker is left with a big one
    while the others are done."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _file_result(project: Path, answer: dict[str, Any], timeout: float) -> FileResult:
    relative = Path(answer["path"]).relative_to(project).as_posix()
    failure = answer.get("failure")
    if failure == "hung":
        message = (
            f"{relative} was still importing after {timeout:g}s ([core] dagbag_import_timeout) "
            "and did not stop; it was ended. Move slow work out of the DAG file's top level "
            "(into tasks), or raise --timeout."
        )
        return FileResult(
            relative, errors=[ParseError("timeout", message, message)], seconds=timeout
        )
    if failure == "died":
        message = (
            f"the Python process importing {relative} ended abruptly: the file (or a library "
            "it uses) crashed or exited."
        )
        return FileResult(relative, errors=[ParseError("crash", message, message)])
    errors = [_error(project, relative, text, timeout) for text in answer.get("errors", [])]
    plugin_errors = answer.get("plugin_errors") or {}
    for failed in answer.get("serialization_errors", []):
        message, text = serialization_error(project, failed, plugin_errors)
        errors.append(ParseError("serialization", message, text))
    return FileResult(
        path=relative,
        dags=[DagInfo(d["dag_id"], int(d["tasks"])) for d in answer.get("dags", [])],
        errors=errors,
        seconds=float(answer.get("seconds", 0.0)),
        placeholders=list(answer.get("placeholders", [])),
        warnings=[parse_warning(project, text) for text in answer.get("warnings", [])],
    )


def _error(project: Path, relative: str, text: str, timeout: float) -> ParseError:
    user = cut(text, project)
    line = user.line if user.file == relative else None
    where = f"{relative}:{user.line}" if user.file and user.line else relative
    message = user.message
    if any(marker in text for marker in _DB_MARKERS):
        kind = "metadata-database"
        message = (
            f"{where} queries the Airflow metadata database at parse time, which Airflow 3 "
            "does not allow in DAG files: move the query into a task (or read a Variable, "
            "Connection or the REST API instead)"
        )
    elif "AirflowTaskTimeout" in text or "DagBag import timeout" in text:
        kind = "timeout"
        message = (
            f"{where} took longer than {timeout:g}s to import ([core] dagbag_import_timeout): "
            "move slow work out of the DAG file's top level (into tasks), or raise --timeout"
        )
    elif "AirflowDagCycleException" in text:
        kind = "cycle"
    elif "SyntaxError" in user.message or "IndentationError" in user.message:
        kind = "syntax"
    elif "ImportError" in user.message or "ModuleNotFoundError" in user.message:
        kind = "import"
        message = f"{user.message} ({error_hints.import_hint(project, user.message)})"
    else:
        kind = "error"
        hint = error_hints.argument_hint(user.message)
        message = f"{user.message} ({hint})" if hint else message
    return ParseError(kind, message, user.text, line)


def _report_duplicates(results: list[FileResult]) -> None:
    """A dag_id defined in two files: Airflow keeps one and drops the other."""
    first: dict[str, str] = {}
    for result in results:
        for dag in result.dags:
            if dag.dag_id in first and first[dag.dag_id] != result.path:
                message = (
                    f"dag_id '{dag.dag_id}' in {result.path} is already defined in "
                    f"{first[dag.dag_id]}; Airflow would ignore one of them: give each DAG "
                    "a unique dag_id"
                )
                result.errors.append(ParseError("duplicate-dag-id", message, message))
            else:
                first.setdefault(dag.dag_id, result.path)


def _from_dict(data: dict[str, Any], *, cached: bool) -> FileResult:
    return FileResult(
        path=data["path"],
        dags=[DagInfo(**d) for d in data.get("dags", [])],
        errors=[ParseError(**e) for e in data.get("errors", [])],
        seconds=float(data.get("seconds", 0.0)),
        cached=cached,
        placeholders=list(data.get("placeholders", [])),
        warnings=[ParseWarning(**w) for w in data.get("warnings", [])],
    )
