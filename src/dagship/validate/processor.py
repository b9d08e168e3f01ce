"""What Airflow's DAG processor does with one DAG file, on every Airflow 3 minor version.

The parse worker loads this module into the deployment's environment (standard library and
Airflow only; dagship itself is not installed there). For each file it does what the DAG
processor's ``_parse_file`` does in that Airflow version:

1. Airflow 3.2+: the DAG stability check (``[dag_processor] dag_version_inflation_check_level``):
   at ``error`` its findings are the file's import error and the file is not imported; at
   ``warning`` they are warnings.
2. Import the file with Airflow's own DagBag: ``BundleDagBag`` where it exists (3.1+), else
   ``DagBag``; from ``airflow.dag_processing.dagbag`` (3.2+) or ``airflow.models.dagbag``.
3. Serialize every DAG it found: ``DagSerialization.to_dict`` (3.2+) or ``SerializedDAG.to_dict``
   (3.0, 3.1). A DAG that fails here (an unregistered timetable or priority weight strategy, a
   value Airflow cannot serialize) is an import error in Airflow and is not registered.

Each choice is made by what the installed Airflow has, not by its version string. The
plugins (from the project's ``plugins/``: registered timetables and priority weight strategies
come from there) are loaded once by ``load_plugins``, before the workers fork.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUNDLE_NAME = "dagship-parse"


def dagbag_class() -> Any:
    """The DagBag the DAG processor of this Airflow uses."""
    try:
        module = importlib.import_module("airflow.dag_processing.dagbag")  # Airflow 3.2+
    except ImportError:
        module = importlib.import_module("airflow.models.dagbag")  # Airflow 3.0, 3.1
    return getattr(module, "BundleDagBag", None) or module.DagBag


def serializer() -> Any:
    """The class whose ``to_dict`` serializes a DAG in this Airflow's DAG processor."""
    from airflow.serialization import serialized_objects

    found = getattr(serialized_objects, "DagSerialization", None)  # Airflow 3.2+
    return found or serialized_objects.SerializedDAG


def load_plugins() -> dict[str, str]:
    """Load Airflow's plugins (the project's ``plugins/``, entry points); the import errors of
    those that failed, by file."""
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    getter = getattr(plugins_manager, "get_import_errors", None)  # Airflow 3.2+
    errors = getter() if getter else getattr(plugins_manager, "import_errors", {})
    return {str(path): str(text) for path, text in errors.items()}


def warm_up(to_dict: Any) -> None:
    """Serialize a DAG of dagship's own and run the stability check on this file, once, so
    that what Airflow loads on first use (the serialization's JSON schema and its validator,
    the operator's serialized fields, the checker's modules) is loaded before workers fork,
    not again in each of them. Neither leaves anything that changes a DAG file's result."""
    import warnings

    from airflow.sdk import DAG, BaseOperator

    # Warnings raised here must not count as already shown when a DAG file raises them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dag = DAG("dagship_warm_up", schedule=None)
        BaseOperator(task_id="warm_up", dag=dag)
        to_dict(dag)
        _stability_check(__file__, os.path.dirname(__file__))


def process(path: str, bundle_path: str, bag_class: Any, to_dict: Any) -> dict[str, Any]:
    """The DAG processor's result for one file: the DAGs that made it (id, task count), the
    import errors, the DAGs that failed to serialize (id, traceback) and the warnings."""
    stability_errors, stability_warnings = _stability_check(path, bundle_path)
    if stability_errors:
        return {"dags": [], "errors": stability_errors, "serialization_errors": [], "warnings": []}
    bag = new_bag(bag_class, path, bundle_path)
    try:
        found = bag.process_file(path, only_if_updated=False, safe_mode=True)
    except Exception:
        found = []
        bag.import_errors[path] = traceback.format_exc()
    failed = serialize(found, to_dict)
    captured = [str(w) for warnings in bag.captured_warnings.values() for w in warnings]
    return {
        "dags": [
            {"dag_id": dag.dag_id, "tasks": len(dag.tasks)}
            for dag in found
            if dag.dag_id not in failed
        ],
        "errors": [str(text) for text in bag.import_errors.values()],
        "serialization_errors": [{"dag_id": k, "traceback": v} for k, v in failed.items()],
        "warnings": captured + (stability_warnings if found else []),
    }


def new_bag(bag_class: Any, path: str, bundle_path: str) -> Any:
    """A DagBag for one file, made as the DAG processor makes it, with the arguments this
    Airflow's DagBag takes (``bundle_name`` from 3.2; ``include_examples`` until 3.2)."""
    taken = _parameters(bag_class)
    kwargs: dict[str, Any] = {
        "dag_folder": path,
        "bundle_path": Path(bundle_path),
        "collect_dags": False,
        "load_op_links": False,
    }
    if "bundle_name" in taken:
        kwargs["bundle_name"] = BUNDLE_NAME
    if "include_examples" in taken:
        kwargs["include_examples"] = False
    return bag_class(**kwargs)


def _parameters(bag_class: Any) -> set[str]:
    """The keyword arguments DagBag takes (BundleDagBag passes its own ``**kwargs`` on)."""
    names: set[str] = set()
    for klass in bag_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names


def serialize(dags: list[Any], to_dict: Any) -> dict[str, str]:
    """Serialize each DAG as the DAG processor does; the traceback of each that failed."""
    failed = {}
    with _settings_read_once():
        for dag in dags:
            try:
                to_dict(dag)
            except Exception:
                failed[dag.dag_id] = traceback.format_exc()
    return failed


class _ReadOnce:
    """Airflow's configuration as its serialization helpers see it while one file's DAGs are
    serialized: each ``getint`` answered from Airflow's configuration once, then remembered.
    Every other attribute is the configuration's own."""

    def __init__(self, conf: Any) -> None:
        self._conf = conf
        self._values: dict[tuple[Any, ...], Any] = {}

    def getint(self, section: str, key: str, *args: Any, **kwargs: Any) -> Any:
        name = (section, key, args, tuple(sorted(kwargs.items())))
        if name not in self._values:
            self._values[name] = self._conf.getint(section, key, *args, **kwargs)
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conf, name)


@contextlib.contextmanager
def _settings_read_once() -> Iterator[None]:
    """Airflow's serializer reads ``[core] max_templated_field_length`` for every templated
    field (about 70 reads for a DAG of 36 tasks, a ninth of its serialization's time): within
    one file's serialization, read it once. The file's DAGs are built by then and no DAG code
    runs while they are serialized, so the value cannot change in between; the next file
    reads it again."""
    helpers = sys.modules.get("airflow.serialization.helpers")
    conf = getattr(helpers, "conf", None)
    if helpers is None or conf is None:
        yield
        return
    helpers.conf = _ReadOnce(conf)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        helpers.conf = conf  # type: ignore[attr-defined]


def _stability_check(path: str, bundle_path: str) -> tuple[list[str], list[str]]:
    """Airflow 3.2+'s DAG stability check: its errors (at level ``error``) and warnings."""
    try:
        from airflow.utils.dag_version_inflation_checker import check_dag_file_stability
    except ImportError:
        return [], []  # Airflow before 3.2
    result = check_dag_file_stability(os.fspath(path))
    errors = result.get_error_format_dict(path, Path(bundle_path)) or {}
    warnings = []
    if result.get_formatted_warnings(["any"]):  # only at level ``warning``
        first = min(result.warnings, default=0)  # lines
        warnings.append(f"{path}:{first}: DagStabilityWarning: {result.format_warnings()}")
    return [str(text) for text in errors.values()], warnings
