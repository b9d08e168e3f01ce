"""dagship's pytest plugin for ``dagship test``: the project's tests run unchanged on every
Airflow 3 version.

Airflow 3.2 dropped ``DagBag``'s ``include_examples`` argument, which every Astro project's
``tests/dags/test_dag_example.py`` passes (``DagBag(include_examples=False)``), so those tests
error at collection. Inside ``dagship test`` only, this plugin makes ``DagBag`` accept the
argument again and ignore it: example DAGs are never loaded there anyway (``[core]
load_examples`` is False). Airflow versions whose DagBag still takes it are left alone.

Airflow is not imported here: the patch is applied when the tests themselves import the DagBag
module, so a conftest.py that sets ``AIRFLOW__*`` variables before importing Airflow still
works. ``dagship test`` copies this file into its throwaway folder and loads it with ``-p``: it
runs in the project's environment, where dagship is not installed, and needs only the standard
library.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

# Where DagBag is defined: from Airflow 3.2, before.
DAGBAG_MODULES = ("airflow.dag_processing.dagbag", "airflow.models.dagbag")


def accept_include_examples(module: ModuleType) -> None:
    """Make ``module.DagBag`` take ``include_examples`` (and ignore it) if it no longer does."""
    # Read without getattr: a module may warn about a deprecated name when it is looked up.
    bag = vars(module).get("DagBag")
    original = vars(bag).get("__init__") if isinstance(bag, type) else None
    if bag is None or original is None or _takes_include_examples(original):
        return

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, include_examples: object = None, **kwargs: Any) -> None:
        original(self, *args, **kwargs)

    signature = _with_include_examples(inspect.signature(original))
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    bag.__init__ = __init__


def _with_include_examples(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` plus a keyword-only ``include_examples=None`` (before any ``**kwargs``)."""
    parameters = list(signature.parameters.values())
    extra = inspect.Parameter("include_examples", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = len(parameters)
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
        at -= 1
    return signature.replace(parameters=[*parameters[:at], extra, *parameters[at:]])


def _takes_include_examples(init: Any) -> bool:
    try:
        return "include_examples" in inspect.signature(init).parameters
    except (TypeError, ValueError):
        return True  # cannot tell: leave it alone


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the DagBag modules with the other finders and patches them once executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in DAGBAG_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                _patch_after_exec(spec.loader)
                return spec
        return None


def _patch_after_exec(loader: Any) -> None:
    execute = loader.exec_module

    def exec_module(module: ModuleType) -> None:
        execute(module)
        accept_include_examples(module)

    loader.exec_module = exec_module


def install() -> None:
    """Patch the DagBag modules already imported, and those imported from now on."""
    for name in DAGBAG_MODULES:
        if name in sys.modules:
            accept_include_examples(sys.modules[name])
    if not any(isinstance(finder, PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, PatchOnImport())


def pytest_configure(config: Any) -> None:
    install()
