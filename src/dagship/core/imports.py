"""Which files of a DAG bundle import a changed module, read from their ``import`` statements.

Airflow puts the bundle's root on ``sys.path``, so ``helpers/dates.py`` is the module
``helpers.dates`` and ``helpers/__init__.py`` the package ``helpers``. A DAG file whose content
did not change still gives a different result when a module it imports changed: such *importers*
must be parsed again, and what Airflow made of them before no longer stands.

Imports are read with ``ast`` (never executed), everywhere in a file (inside functions and
``try`` blocks too), and followed through the bundle's own modules: a DAG file that imports
``helpers``, which imports ``helpers.dates``, imports ``helpers.dates``. Imports made at run time
from a computed name (``importlib.import_module(name)``) cannot be seen.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping

_SUFFIX = ".py"
_PACKAGE = "__init__"


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
    if b"import" not in source:
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
    return frozenset(found)


def importers(
    after: Mapping[str, str],
    before: Mapping[str, str],
    imports_of: Callable[[str], frozenset[str]],
) -> set[str]:
    """The files of the new version whose content did not change but that import, directly or
    through other modules of the bundle, a module added, changed or removed since the previous
    version. ``after`` and ``before`` map each path of the two versions to its sha256;
    ``imports_of(path)`` gives the ``imported_modules`` of a file of the new version."""
    python = [path for path in after.keys() | before.keys() if path.endswith(_SUFFIX)]
    touched = [path for path in python if after.get(path) != before.get(path)]
    found = _importing(touched, [path for path in python if path in after], imports_of)
    return {path for path in found if after[path] == before.get(path)}


def _importing(
    touched: Iterable[str], paths: Iterable[str], imports_of: Callable[[str], frozenset[str]]
) -> set[str]:
    """The files among ``paths`` that import a module of ``touched``, or a module that does."""
    tainted = {name for name in map(module_name, touched) if name}
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
