"""The parse worker: imports DAG files with Airflow's own DagBag, one request at a time.

``dagship parse`` starts this script with the deployment environment's interpreter, so it needs
only the standard library and Airflow; dagship itself is not installed there. Two modes:

``parse_worker.py list DAGS_FOLDER``
    Print the DAG files Airflow's DAG processor would parse, as a JSON list: the folder walked
    with Airflow's own ``.airflowignore`` rules (``[core] dag_ignore_file_syntax``) and its
    safe-mode heuristic. It does not import Airflow, so it takes a fraction of a second.

``parse_worker.py serve PROJECT DAGS_FOLDER SOCKET``
    Import Airflow once, then fork a worker for each ``fork`` line on stdin: a copy of this
    process, so Airflow is imported once per parse, not once per worker, and every worker starts
    clean (this process never imports a DAG file). Each worker connects to the Unix socket
    SOCKET, reads one JSON request per line (``{"path": ...}``) and answers one JSON line per
    file: the DAGs found (id, task count), the errors Airflow recorded (with tracebacks), the
    placeholders used and the time taken. Airflow's own per-file timeout
    (``[core] dagbag_import_timeout``) applies. Database access is blocked as in Airflow's DAG
    processor. Anything the DAG files print goes to stderr, never into the answers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
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
    if len(argv) == 4 and argv[0] == "serve":
        return serve(argv[1], argv[2], argv[3], here)
    sys.stderr.write("usage: parse_worker.py list DAGS | serve PROJECT DAGS SOCKET\n")
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


def serve(project: str, dags_folder: str, socket_path: str, here: str) -> int:
    """Import Airflow once, then fork a worker for each ``fork`` line read on stdin."""
    # Status goes to the original stdout; fd 1 becomes stderr so that prints and subprocesses
    # started by DAG files cannot corrupt the answers.
    status = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        bag_class, placeholders = _prepare(project, here)
    except BaseException:
        _send(status, {"fatal": traceback.format_exc()})
        return 1
    import airflow

    _send(status, {"ready": True, "airflow_version": airflow.__version__, "pid": os.getpid()})
    signal.signal(signal.SIGCHLD, _reap)
    for line in sys.stdin:
        if line.strip() != "fork":
            continue
        if os.fork() == 0:
            # The worker: a copy of this process with Airflow already imported.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            status.close()
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            code = 0
            try:
                _work(socket_path, dags_folder, bag_class, placeholders)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
    return 0


def _reap(signum: int, frame: Any) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _work(socket_path: str, dags_folder: str, bag_class: Any, placeholders: Any) -> None:
    """Answer one request per line on a connection to ``dagship parse``, until it closes."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(socket_path)
    reader = connection.makefile("r", encoding="utf-8")
    writer = connection.makefile("w", encoding="utf-8")
    _send(writer, {"ready": True, "pid": os.getpid()})
    for line in reader:
        request = json.loads(line)
        _send(writer, parse_file(request["path"], dags_folder, bag_class, placeholders))


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
