"""Airflow's DAG discovery, remembered: ``might_contain_dag`` reads a file only when it changed.

After every version change, Airflow's DAG processor lists the bundle's files again, in the loop
that switches, before it parses anything. With ``[core] dag_discovery_safe_mode`` on (its
default) it opens every ``.py`` file to keep those that mention "airflow" and "dag" (or "asset"):
10,000 files read on every deploy. A dagship tree keeps the inode and mtime of each file the
deploy did not change (tree.py), so this callable remembers Airflow's answer per file by device,
inode, size and mtime, and asks Airflow's own heuristic only for a file it has not seen so.
After a one-file deploy of a 10,000-file bundle, one file is read instead of 10,000.

Turn it on in the DAG processor's configuration::

    [core]
    might_contain_dag_callable = dagship.airflow.discovery.might_contain_dag

(``AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE``). It works for any dags folder or bundle whose
files change their mtime or size when their content changes, as every editor's and Git's
writes do.
"""

from __future__ import annotations

import os
import zipfile

# Enough for a few versions of a very large bundle; past it the memory starts again.
MAX_REMEMBERED = 200_000

_answers: dict[tuple[int, int, int, int], bool] = {}


def might_contain_dag(file_path: str, zip_file: zipfile.ZipFile | None = None) -> bool:
    """Airflow's default heuristic, answered from memory for a file seen unchanged before."""
    from airflow.utils.file import might_contain_dag_via_default_heuristic as heuristic

    if zip_file is not None:  # a member of a zipped DAG package: no inode of its own
        return bool(heuristic(file_path, zip_file=zip_file))
    try:
        st = os.stat(file_path)
    except OSError:
        return bool(heuristic(file_path))  # Airflow's own error, as without this callable
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    answer = _answers.get(key)
    if answer is None:
        answer = bool(heuristic(file_path))
        if len(_answers) >= MAX_REMEMBERED:
            _answers.clear()
        _answers[key] = answer
    return answer
