"""The parse worker: imports DAG files with Airflow's own DagBag, one request at a time.

``dagship parse`` starts this script with the deployment environment's interpreter, so it needs
only the standard library and Airflow; dagship itself is not installed there.

``parse_worker.py serve PROJECT DAGS_FOLDER SOCKET IDLE``
    First list the DAG files Airflow's DAG processor would parse: the folder walked with
    Airflow's own ``.airflowignore`` rules (``[core] dag_ignore_file_syntax``) and its safe-mode
    heuristic, without importing Airflow. The listing is the first JSON line on stdout, so the
    caller can hash and look the files up in its cache while this process goes on to import
    Airflow, and the libraries the DAG files import at top level (pandas, providers...). It
    then listens on the Unix socket SOCKET, says so in a second line, and forks a worker for
    each connection: a copy of this process, so Airflow is imported once, not once per worker,
    and every worker starts clean (this process never imports a DAG file, only libraries). It
    exits after IDLE seconds without a connection (0: never; ``dagship parse`` then stops it).

    A worker takes the caller's environment variables from the first line, then reads one JSON
    request per line and answers each with one JSON line: ``{"list": true}`` is answered with
    the listing as above, ``{"path": ...}`` with what Airflow's DAG processor makes of that
    file (processor.py, for the installed Airflow 3.0 to 3.3): the DAGs it registers (id, task
    count), the import errors (with tracebacks), the DAGs that fail to serialize, the warnings
    DagBag captured, the placeholders used and the time taken. Airflow's own per-file timeout
    (``[core] dagbag_import_timeout``) applies. Database access is blocked and the plugins are
    loaded (once, before forking) as in Airflow's DAG processor. Anything the DAG files print
    goes to stderr, never into the answers.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import os
import re
import select
import signal
import socket
import sys
import time
import traceback
import zipfile
from typing import Any, TextIO

# Top-level ``import a.b`` / ``from a.b import c`` statements (not relative imports).
_IMPORT = re.compile(r"^(?:from|import)\s+([A-Za-z_][\w.]*)", re.MULTILINE)


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    # This folder holds dagship modules whose names (errors, parse, ...) must not shadow the
    # project's own modules.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if len(argv) == 5 and argv[0] == "serve":
        return serve(argv[1], argv[2], argv[3], float(argv[4]), here)
    sys.stderr.write("usage: parse_worker.py serve PROJECT DAGS SOCKET IDLE\n")
    return 2


# --------------------------------------------------------------------------- listing


def list_dag_files(dags_folder: str) -> dict[str, list[str]]:
    """The DAG files, and the modules they import at top level (for the forkserver to preload)."""
    syntax = os.environ.get("AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX", "glob") or "glob"
    safe_mode = os.environ.get("AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE", "true").lower() != "false"
    might_contain_dag = _custom_heuristic() if safe_mode else None
    files = []
    modules: set[str] = set()
    for path in _find_path_from_directory()(dags_folder, ".airflowignore", syntax):
        try:
            with open(path, "rb") as handle:
                content = handle.read()  # read once for the checks and the imports
        except OSError:
            continue
        is_zip = zipfile.is_zipfile(io.BytesIO(content))
        if not (path.endswith(".py") or is_zip):
            continue
        if safe_mode and not _might_contain_dag(path, content, is_zip, might_contain_dag):
            continue
        files.append(path)
        if path.endswith(".py"):
            modules.update(_IMPORT.findall(content.decode(errors="replace")))
    return {"files": sorted(files), "modules": sorted(modules)}


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


def _custom_heuristic() -> Any:
    """The ``[core] might_contain_dag_callable`` set through the environment, if not Airflow's
    default: called as Airflow calls it, ``(file_path=..., zip_file=None)``."""
    name = os.environ.get("AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE", "").strip()
    if not name or name.endswith(".might_contain_dag_via_default_heuristic"):
        return None
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def _might_contain_dag(path: str, content: bytes, is_zip: bool, custom: Any) -> bool:
    """Airflow's safe-mode check: the custom ``might_contain_dag_callable`` if one is set, else
    Airflow's default heuristic (``might_contain_dag_via_default_heuristic``)."""
    if custom is not None:
        return bool(custom(file_path=path, zip_file=None))
    content = content.lower()
    return is_zip or (b"airflow" in content and (b"dag" in content or b"asset" in content))


# --------------------------------------------------------------------------- serving


def serve(project: str, dags_folder: str, control_path: str, idle: float, here: str) -> int:
    """List the DAG files, import Airflow once, then fork a worker for each connection to
    ``control_path``."""
    # Status goes to the original stdout; fd 1 becomes stderr so that prints and subprocesses
    # started by DAG files cannot corrupt the answers.
    status = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        listing = list_dag_files(dags_folder)
        _send(status, {"listing": listing})
        steps, placeholders = _prepare(project, here)
        _preload(project, listing["modules"])
        # A failed warm-up changes nothing: each worker then loads what it needs itself.
        with contextlib.suppress(Exception):
            steps.processor.warm_up(steps.to_dict)
        # Objects imported so far live as long as the workers: the garbage collector of a
        # worker need not scan them again (and copy their pages) on every collection.
        gc.freeze()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(control_path)
        listener.listen()
    except BaseException:
        _send(status, {"fatal": traceback.format_exc()})
        return 1
    import airflow

    # The caller may have gone (it found nothing to parse): this process serves the next one.
    with contextlib.suppress(OSError):
        _send(status, {"ready": True, "airflow_version": airflow.__version__, "pid": os.getpid()})
        status.close()
    signal.signal(signal.SIGCHLD, _reap)
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], idle if idle > 0 else None)
            if not ready:
                return 0  # idle for too long
            connection, _ = listener.accept()
            if os.fork() == 0:
                # The worker: a copy of this process with Airflow already imported.
                listener.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                code = 0
                try:
                    _work(connection, dags_folder, steps, placeholders)
                except BaseException:
                    traceback.print_exc()
                    code = 1
                finally:
                    os._exit(code)
            connection.close()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(control_path)


def _preload(project: str, modules: list[str]) -> None:
    """Import the libraries the DAG files import (pandas, providers...) once, here, so that
    workers start with them. The project's own modules are never imported here."""
    root = os.path.abspath(project) + os.sep
    for name in modules:
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            continue
        locations = list(spec.submodule_search_locations or []) if spec else []
        origin = spec.origin if spec and spec.origin else (locations[0] if locations else "")
        if spec is None or origin.startswith(root) or "__future__" in name:
            continue
        with contextlib.suppress(BaseException):
            importlib.import_module(name)


def _reap(signum: int, frame: Any) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _work(connection: socket.socket, dags_folder: str, steps: Steps, placeholders: Any) -> None:
    """Answer one request per line on a connection from ``dagship parse``, until it closes.

    The first line carries the caller's environment variables (this process may have been
    started by an earlier ``dagship parse``) and is answered with the worker's pid."""
    reader = connection.makefile("r", encoding="utf-8")
    writer = connection.makefile("w", encoding="utf-8")
    first = reader.readline()
    if not first:
        return  # a liveness check
    os.environ.clear()
    os.environ.update(json.loads(first)["env"])
    _send(writer, {"ready": True, "pid": os.getpid()})
    for line in reader:
        request = json.loads(line)
        if request.get("list"):
            _send(writer, list_dag_files(dags_folder))
        else:
            _send(writer, parse_file(request["path"], dags_folder, steps, placeholders))


def _send(stream: TextIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def _prepare(project: str, here: str) -> tuple[Any, Any]:
    """Import Airflow as its DAG processor has it before a DAG file is imported: database
    access blocked, the plugins loaded; then the placeholders. The Airflow side of a parse
    (which DagBag, which serializer) is chosen by ``processor.py`` for the installed version."""
    import logging

    logging.getLogger("airflow").setLevel(logging.ERROR)
    from airflow.sdk.execution_time.supervisor import block_orm_access

    block_orm_access()
    processor = _load_module(here, "processor")
    placeholders = _load_module(here, "placeholders")
    placeholders.install(project)
    steps = Steps(processor, processor.dagbag_class(), processor.serializer().to_dict)
    steps.plugin_errors = processor.load_plugins()
    return steps, placeholders


def _load_module(here: str, name: str) -> Any:
    """A module of this folder, loaded by path: the folder is not on ``sys.path``."""
    path = os.path.join(here, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_dagship_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Steps:
    """The Airflow side of a parse, chosen once in the forkserver (see processor.py)."""

    def __init__(self, processor: Any, bag_class: Any, to_dict: Any) -> None:
        self.processor = processor
        self.bag_class = bag_class
        self.to_dict = to_dict
        self.plugin_errors: dict[str, str] = {}


def parse_file(path: str, dags_folder: str, steps: Steps, placeholders: Any) -> dict[str, Any]:
    placeholders.used.clear()
    start = time.perf_counter()
    result = steps.processor.process(path, dags_folder, steps.bag_class, steps.to_dict)
    seconds = time.perf_counter() - start
    if result["serialization_errors"]:
        result["plugin_errors"] = steps.plugin_errors
    return {
        "path": path,
        **result,
        "placeholders": sorted(set(placeholders.used)),
        "seconds": seconds,
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
