"""What a DAG file's parse result depends on in the project: the modules it imports.

A DAG file is parsed again when it changed, or when a Python module it imports from the
project changed, directly or through other modules of the project (``core.imports`` reads the
``import`` statements with ``ast``, never running them). Modules are found where Airflow's DAG
processor finds them: under ``dags/`` (the bundle's root: ``helpers.dates``), the project's root
(``include.helpers``) and ``plugins/``. A file that imports by computed name (``importlib``,
``__import__``, ``exec``) may depend on any module: it depends on every shared Python file, as
every DAG file did before.

Each file's imports are kept by the file's sha256 in the parse cache, so only the files that
changed are read with ``ast``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dagship.core.imports import imported_modules, module_name

if TYPE_CHECKING:
    from dagship.validate.parse_cache import ParseCache

# Where Python finds the project's modules, most specific first: the DAG bundle, the plugins,
# the project's root (on PYTHONPATH, for include/).
ROOTS = ("dags/", "plugins/", "")
# A file holding one of these may import a module whose name ``ast`` cannot read.
_DYNAMIC = (b"import_module", b"__import__", b"exec(", b"runpy", b"spec_from_file_location")
_SUFFIX = ".py"

# A file's imported module names, or None when it imports by computed name.
Imports = list[str] | None


class ImportGraph:
    """The project's Python files, by the module names they hold and the modules they import.

    ``digests`` maps each Python file that DAG files may import (from
    ``parse_cache.project_file_digests``) to its sha256; ``cache`` keeps each file's imports
    between parses."""

    def __init__(self, project: Path, digests: Mapping[str, str], cache: ParseCache) -> None:
        self.project = project
        self.digests = digests
        self.cache = cache
        self._read: dict[str, Imports] = {}
        self.modules: dict[str, list[str]] = {}
        for path in digests:
            for name in _names(path):
                self.modules.setdefault(name, []).append(path)

    def dependencies(self, path: str, digest: str) -> dict[str, str] | None:
        """The project's Python files that the file at ``path`` (relative to the project, with
        sha256 ``digest``) imports, directly or through them, with their sha256; None when one
        of them imports by computed name (so it may import anything)."""
        found: dict[str, str] = {}
        queue = [(path, digest)]
        while queue:
            imports = self._imports(*queue.pop())
            if imports is None:
                return None
            for name in imports:
                for module in self.modules.get(name, ()):
                    if module not in found and module != path:
                        found[module] = self.digests[module]
                        queue.append((module, self.digests[module]))
        return found

    def _imports(self, path: str, digest: str) -> Imports:
        if digest in self._read:
            return self._read[digest]
        found, imports = self.cache.get_imports(digest)
        if not found:
            imports = _read_imports(self.project, path)
            self.cache.put_imports(digest, imports)
        self._read[digest] = imports
        return imports


def _names(path: str) -> Iterable[str]:
    """The module names a project file holds: one per root it is under."""
    for root in ROOTS:
        if path.startswith(root):
            name = module_name(path[len(root) :])
            if name:
                yield name


def _read_imports(project: Path, path: str) -> Imports:
    try:
        source = (project / path).read_bytes()
    except OSError:
        return []
    if any(marker in source for marker in _DYNAMIC):
        return None
    # Relative imports are resolved within the root the file is imported from.
    root = next(root for root in ROOTS if path.startswith(root))
    return sorted(imported_modules(source, path[len(root) :]))


def python_files(digests: Mapping[str, str]) -> dict[str, str]:
    """The Python files among ``digests``."""
    return {path: digest for path, digest in digests.items() if path.endswith(_SUFFIX)}
