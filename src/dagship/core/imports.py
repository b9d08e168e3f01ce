"""Which files of a DAG bundle import a changed module or name a changed file, read from their
``import`` statements and string constants.

Airflow puts the bundle's root on ``sys.path``, so ``helpers/dates.py`` is the module
``helpers.dates`` and ``helpers/__init__.py`` the package ``helpers``. A DAG file whose content
did not change still gives a different result when a module it imports changed: such *importers*
must be parsed again, and what Airflow made of them before no longer stands.

A DAG file that names a file of the bundle (``"sql/report.sql"``, a template, a YAML config
read by its tasks, a script they run) is an importer of that file too: Airflow pins each
new DAG run to the bundle version of the DAG's last parse, so until that DAG file is parsed
again its new runs read the previous version's file.

Imports are read with ``ast`` (never executed), everywhere in a file (inside functions and
``try`` blocks too), and followed through the bundle's own modules: a DAG file that imports
``helpers``, which imports ``helpers.dates``, imports ``helpers.dates``. Imports made at run time
from a computed name (``importlib.import_module(name)``) cannot be seen, nor a file named only
by a computed name or a pattern (``glob("*.sql")``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Mapping

_SUFFIX = ".py"
_PACKAGE = "__init__"
# A file name in a string: "report.sql", "sql/report.sql" and "/opt/sql/report.sql" all name
# report.sql.
_FILE_NAME = re.compile(r"[\w.-]*\w\.\w+")
# Marks a file name a file mentions, beside the modules it imports (no module name has a "/").
NAMED = "/"


def module_name(path: str) -> str | None:
    """The module a bundle path holds (``a/b.py`` -> ``a.b``, ``a/__init__.py`` -> ``a``), or
    None for a file that is not a Python module."""
    if not path.endswith(_SUFFIX):
        return None
    parts = path[: -len(_SUFFIX)].split("/")
    if parts[-1] == _PACKAGE:
        parts.pop()
    return ".".join(parts) or None


def imported_modules(source: bytes, path: str) -> frozenset[str]:
    """Every module the file at ``path`` may import, with the packages around it: ``import
    a.b`` and ``from a import b`` both give ``a`` and ``a.b`` (``b`` may be a submodule).
    Relative imports are resolved against the file's package. A file Python cannot parse
    imports nothing (its own import error says so)."""
    return _read(source, path, names=False)


def references(source: bytes, path: str) -> frozenset[str]:
    """What ``importers`` follows in the file at ``path``: its ``imported_modules``, and the
    base name of each file its string constants name, after ``NAMED`` (``"sql/report.sql"``
    gives ``"/report.sql"``)."""
    return _read(source, path, names=True)


def _read(source: bytes, path: str, *, names: bool) -> frozenset[str]:
    # A module of constants ("sql/report.sql") names files without importing anything.
    if b"import" not in source and not (names and b"." in source):
        return frozenset()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, path)
            if base is None:
                continue
            found.update(_with_parents(base))
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif names and isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(NAMED + name for name in _FILE_NAME.findall(node.value))
    return frozenset(found)


def importers(
    after: Mapping[str, str],
    before: Mapping[str, str],
    imports_of: Callable[[str], frozenset[str]],
) -> set[str]:
    """The Python files of the new version whose content did not change but that import,
    directly or through other modules of the bundle, a module added, changed or removed since
    the previous version, or name a file that was (``"sql/report.sql"``, a script a task runs).
    ``after`` and ``before`` map each path of the two versions to its sha256;
    ``imports_of(path)`` gives the ``references`` of a Python file of the new version."""
    touched = [path for path in after.keys() | before.keys() if after.get(path) != before.get(path)]
    python = [path for path in after if path.endswith(_SUFFIX)]
    found = _importing(touched, python, imports_of)
    return {path for path in found if after[path] == before.get(path)}


def _importing(
    touched: Iterable[str], paths: Iterable[str], imports_of: Callable[[str], frozenset[str]]
) -> set[str]:
    """The files among ``paths`` that import a module of ``touched`` or name another file of
    it, or import a module that does."""
    tainted = {name for path in touched for name in _dependencies(path)}
    if not tainted:
        return set()
    by_module: dict[str, set[str]] = {}
    for path in paths:
        for name in imports_of(path):
            by_module.setdefault(name, set()).add(path)
    found: set[str] = set()
    queue = list(tainted)
    while queue:
        for path in by_module.get(queue.pop(), ()):
            if path in found:
                continue
            found.add(path)
            module = module_name(path)
            if module and module not in tainted:
                tainted.add(module)
                queue.append(module)
    return found


def _dependencies(path: str) -> list[str]:
    """How files that depend on the file at ``path`` refer to it: by its base name after
    ``NAMED`` (a SQL file, or a script a task runs), and by its module name if it has one."""
    found = [NAMED + path.rsplit("/", 1)[-1]]
    module = module_name(path)
    if module:
        found.append(module)
    return found


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def _absolute(module: str | None, level: int, path: str) -> str | None:
    """The absolute name of ``from <level dots><module> import ...`` in the file at ``path``;
    None when it climbs above the bundle's root."""
    if level == 0:
        return module
    package = path.split("/")[:-1]
    if level - 1 > len(package) or (level - 1 == len(package) and not module):
        return None
    base = package[: len(package) - (level - 1)]
    if module:
        base.append(module)
    return ".".join(base)
