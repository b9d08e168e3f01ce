"""The parse cache: a DAG file's result is reused while nothing it may depend on changed.

An entry is keyed by the file's content, the environment (Airflow and requirements), a digest of
the project's shared Python code (every file of dags/, include/ and plugins/ that is not a DAG
file, and the project's top-level ``.py`` files), the Airflow settings given as ``AIRFLOW__*``
environment variables and the parse worker itself. A change to a helper module therefore parses
every file again, which is the safe choice. Entries are JSON files written atomically under
``$DAGSHIP_CACHE_DIR/parse/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SHARED_FOLDERS = ("dags", "include", "plugins")
_SKIPPED_PARTS = {"__pycache__", ".git", ".venv", "venv", "node_modules"}
_WORKER_FILES = ("parse_worker.py", "placeholders.py")


class ParseCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(result, stream)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shared_code_digest(project: Path, dag_files: Iterable[Path]) -> str:
    """A digest of the files DAG files may import or read that are not DAG files themselves."""
    skip = {path.resolve() for path in dag_files}
    digest = hashlib.sha256()
    candidates = sorted(project.glob("*.py"))
    for folder in SHARED_FOLDERS:
        base = project / folder
        if base.is_dir():
            candidates.extend(sorted(p for p in base.rglob("*") if p.is_file()))
    for path in candidates:
        relative = path.relative_to(project)
        if path.resolve() in skip or _SKIPPED_PARTS.intersection(relative.parts):
            continue
        if path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def worker_digest() -> str:
    """Changes to the parse worker or the placeholders invalidate every entry."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _WORKER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def airflow_settings() -> dict[str, str]:
    """The ``AIRFLOW__*`` settings of this shell: they can change what a DAG file produces."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("AIRFLOW__")}


def entry_key(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
