"""The parse cache: a DAG file's result is reused while nothing it may depend on changed.

An entry is keyed by the file's content, the project's Python modules it imports with their
content (``parse_deps.py``: a change to a helper module parses again the files that import it,
and only those), the environment (Airflow and requirements), the code Airflow runs before any DAG
file (plugins, ``airflow_local_settings.py``, the project's top-level ``.py`` files), every other
file of dags/, include/ and plugins/ that is not Python (a DAG file may read it at parse time),
the Airflow settings given as ``AIRFLOW__*`` environment variables and the parse worker itself.
The imports each file makes are kept too, by the file's content.

A project's entries are one JSON file under ``$DAGSHIP_CACHE_DIR/parse/``, read once and
written atomically once per parse: the entries of that parse's files come last, older ones are
kept up to ``MAX_ENTRIES`` (the least recently used go first). Two parses of one project at the
same time may each drop the other's new entries; those files are then simply parsed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dagship.files import write_atomic

SHARED_FOLDERS = ("dags", "include", "plugins")
_SKIPPED_PARTS = {"__pycache__", ".git", ".venv", "venv", "node_modules"}
# The code that decides what a file's result says: the worker and its Airflow steps, and the
# hints dagship adds to an error. A change to any of them invalidates every cached result.
_WORKER_FILES = (
    "parse_worker.py",
    "processor.py",
    "placeholders.py",
    "parse.py",
    "error_hints.py",
    "airflow2.py",
    "astro_runtime.py",
    "tracebacks.py",
)


MAX_ENTRIES = 10_000
_IMPORTS_CODE = hashlib.sha256(
    b"".join(
        path.read_bytes()
        for path in (
            Path(__file__).parent / "parse_deps.py",
            Path(__file__).parent.parent / "core" / "imports.py",
        )
    )
).hexdigest()


class ParseCache:
    """The cached results of one project's DAG files."""

    def __init__(self, root: Path, project: Path) -> None:
        self.path = root / f"{entry_key(str(project))[:32]}.json"
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}
        self.entries: dict[str, dict[str, Any]] = entries if isinstance(entries, dict) else {}

        self._imports_used: list[str] = []

    def get(self, key: str) -> dict[str, Any] | None:
        entry = self.entries.get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        self.entries[key] = result

    def get_imports(self, digest: str) -> tuple[bool, list[str] | None]:
        """``(found, modules)``: the modules the file with sha256 ``digest`` imports (None:
        it imports by computed name), if known."""
        key = _imports_key(digest)
        self._imports_used.append(key)
        entry = self.get(key)
        if entry is None or "modules" not in entry:
            return False, None
        modules = entry["modules"]
        return True, list(modules) if isinstance(modules, list) else None

    def put_imports(self, digest: str, modules: list[str] | None) -> None:
        self.put(_imports_key(digest), {"modules": modules})

    def save(self, used: list[str]) -> None:
        """Write the entries, those of ``used`` (and the imports looked up) as the most
        recent."""
        used = [*self._imports_used, *used]
        recent = {key: self.entries[key] for key in used if key in self.entries}
        older = [(k, v) for k, v in self.entries.items() if k not in recent]
        kept = dict(older[max(0, len(older) + len(recent) - MAX_ENTRIES) :])
        kept.update(recent)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(kept), mode=0o600)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_file_digests(project: Path) -> dict[str, str]:
    """The sha256 of every file DAG files may be or may use: the project's top-level ``.py``
    files and everything under dags/, include/ and plugins/ (by path relative to the project)."""
    candidates = list(project.glob("*.py"))
    for folder in SHARED_FOLDERS:
        candidates.extend(p for p in (project / folder).rglob("*") if p.is_file())
    return _file_digests(project, candidates)


def shared_code_digest(digests: dict[str, str], dag_files: Iterable[str]) -> str:
    """A digest of the files DAG files may import or read that are not DAG files themselves,
    from ``project_file_digests`` and the DAG files' relative paths."""
    skip = set(dag_files)
    return _combined({k: v for k, v in digests.items() if k not in skip})


def startup_code_digest(project: Path) -> str:
    """A digest of the project code a forkserver may have run before forking workers: Airflow
    imports ``airflow_local_settings`` (from the project root, dags/ or plugins/) when it
    starts, and the plugins."""
    candidates = list(project.glob("*.py"))
    candidates.append(project / "dags" / "airflow_local_settings.py")
    candidates.extend(p for p in (project / "plugins").rglob("*") if p.is_file())
    return _combined(_file_digests(project, candidates))


def _file_digests(project: Path, paths: list[Path]) -> dict[str, str]:
    digests = {}
    for path in paths:
        relative = path.relative_to(project)
        if path.suffix == ".pyc" or _SKIPPED_PARTS.intersection(relative.parts):
            continue
        with contextlib.suppress(OSError):
            digests[relative.as_posix()] = file_digest(path)
    return digests


def data_digest(digests: Mapping[str, str]) -> str:
    """A digest of the files of ``project_file_digests`` that are not Python: data a DAG file
    may read at parse time (SQL, YAML, JSON under include/)."""
    return _combined({k: v for k, v in digests.items() if not k.endswith(".py")})


def combined_digest(digests: Mapping[str, str]) -> str:
    """One digest of files (relative path -> sha256)."""
    return _combined(digests)


def _imports_key(digest: str) -> str:
    # The code that reads imports is part of the key: a change to it reads every file again.
    return "imports-" + entry_key(_IMPORTS_CODE, digest)


def _combined(digests: Mapping[str, str]) -> str:
    """One digest of files' paths and contents, whatever order they were found in."""
    digest = hashlib.sha256()
    for relative in sorted(digests):
        digest.update(relative.encode() + b"\0" + bytes.fromhex(digests[relative]))
    return digest.hexdigest()


def worker_digest() -> str:
    """A digest of the code that shapes a file's result (``_WORKER_FILES``): changing it
    invalidates every entry."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _WORKER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def airflow_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The ``AIRFLOW__*`` settings of ``env``: they can change what a DAG file produces."""
    return {k: v for k, v in sorted(env.items()) if k.startswith("AIRFLOW__")}


def entry_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
