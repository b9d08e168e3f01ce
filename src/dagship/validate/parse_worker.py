"""The parse worker: imports DAG files with Airflow's own DagBag, one request at a time.

``dagship parse`` starts this script with the deployment environment's interpreter, so it needs
only the standard library and Airflow; dagship itself is not installed there. Two modes:

``parse_worker.py list DAGS_FOLDER``
    Print the DAG files Airflow's DAG processor would parse, as a JSON list: the folder walked
    with Airflow's own ``.airflowignore`` rules (``[core] dag_ignore_file_syntax``) and its
    safe-mode heuristic. It does not import Airflow, so it takes a fraction of a second.

``parse_worker.py serve PROJECT DAGS_FOLDER``
    Import Airflow once, then read one JSON request per line on stdin (``{"path": ...}``) and
    answer one JSON line per file: the DAGs found (id, task count), the errors Airflow recorded
    (with tracebacks), the placeholders used and the time taken. Airflow's own per-file timeout
    (``[core] dagbag_import_timeout``) applies. Database access is blocked as in Airflow's DAG
    processor. Anything the DAG files print goes to stderr, never into the answers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any, TextIO

BUNDLE_NAME = "dagship-parse"


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    # This folder holds dagship modules whose names (errors, parse, ...) must not shadow the
    # project's own modules.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if len(argv) == 2 and argv[0] == "list":
        sys.stdout.write(json.dumps(list_dag_files(argv[1])) + "\n")
        return 0
    if len(argv) == 3 and argv[0] == "serve":
        return serve(argv[1], argv[2], here)
    sys.stderr.write("usage: parse_worker.py list DAGS_FOLDER | serve PROJECT DAGS_FOLDER\n")
    return 2


# --------------------------------------------------------------------------- listing


def list_dag_files(dags_folder: str) -> list[str]:
    syntax = os.environ.get("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "glob") or "glob"
    safe_mode = os.environ.get("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "true").lower() != "false"
    files = []
    for path in _find_path_from_directory()(dags_folder, ".airflowignore", syntax):
        try:
            candidate = Path(path).is_file() and (path.endswith(".py") or zipfile.is_zipfile(path))
            if candidate and (not safe_mode or _might_contain_dag(path)):
                files.append(path)
        except OSError:
            continue
    return sorted(files)


def _find_path_from_directory() -> Any:
    """Airflow's own directory walk with ``.airflowignore``, without importing Airflow."""
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("Apache Airflow is not installed in this environment")
    for base in spec.submodule_search_locations:
        source = os.path.join(base, "_shared", "module_loading", "file_discovery.py")
        if os.path.isfile(source):
            module_spec = importlib.util.spec_from_file_location("_dagship_file_discovery", source)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module.find_path_from_directory
    from airflow.utils.file import find_path_from_directory  # Airflow before 3.2

    return find_path_from_directory


def _might_contain_dag(path: str) -> bool:
    """Airflow's default safe-mode heuristic (``might_contain_dag_via_default_heuristic``)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        content = handle.read().lower()
    return b"airflow" in content and (b"dag" in content or b"asset" in content)


# --------------------------------------------------------------------------- serving


def serve(project: str, dags_folder: str, here: str) -> int:
    # Answers go to the original stdout; fd 1 becomes stderr so that prints and subprocesses
    # started by DAG files cannot corrupt them.
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        bag_class, placeholders = _prepare(project, here)
    except BaseException:
        _send(answers, {"fatal": traceback.format_exc()})
        return 1
    import airflow

    _send(answers, {"ready": True, "airflow_version": airflow.__version__, "pid": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        _send(answers, parse_file(request["path"], dags_folder, bag_class, placeholders))
    return 0


def _send(stream: TextIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _prepare(project: str, here: str) -> tuple[Any, Any]:
    import logging

    from airflow.dag_processing import dagbag

    logging.getLogger("airflow").setLevel(logging.ERROR)
    # Exactly what Airflow's DAG processor does before it imports a DAG file.
    from airflow.sdk.execution_time.supervisor import block_orm_access

    block_orm_access()
    spec = importlib.util.spec_from_file_location(
        "_dagship_placeholders", os.path.join(here, "placeholders.py")
    )
    assert spec is not None and spec.loader is not None
    placeholders = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(placeholders)
    placeholders.install(project)
    return getattr(dagbag, "BundleDagBag", dagbag.DagBag), placeholders


def parse_file(path: str, dags_folder: str, bag_class: Any, placeholders: Any) -> dict[str, Any]:
    placeholders.used.clear()
    start = time.perf_counter()
    bag = bag_class(
        dag_folder=path,
        bundle_path=Path(dags_folder),
        bundle_name=BUNDLE_NAME,
        collect_dags=False,
    )
    try:
        found = bag.process_file(path, only_if_updated=False, safe_mode=True)
    except Exception:
        found = []
        bag.import_errors[path] = traceback.format_exc()
    seconds = time.perf_counter() - start
    return {
        "path": path,
        "dags": [{"dag_id": dag.dag_id, "tasks": len(dag.tasks)} for dag in found],
        "errors": [str(text) for text in bag.import_errors.values()],
        "warnings": [str(w) for warnings in bag.captured_warnings.values() for w in warnings],
        "placeholders": sorted(set(placeholders.used)),
        "seconds": seconds,
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
