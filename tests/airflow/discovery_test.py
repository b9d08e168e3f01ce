"""dagship's might_contain_dag through Airflow's own file discovery (list_py_file_paths, as the
DAG processor lists a bundle after a version change): the same files as Airflow's heuristic,
and a file read again only when its inode, size or mtime changed."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("airflow")

from airflow.utils.file import list_py_file_paths

from dagship.airflow import discovery

DAG = "from airflow.sdk import DAG\n\nDAG('d{n}')\n"
HELPER = "def helper():\n    return 1\n"


@pytest.fixture
def dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder with two DAG files and a helper, listed with Airflow's safe mode on and
    dagship's callable configured (Airflow reads its settings from the environment)."""
    folder = tmp_path / "dags"
    (folder / "lib").mkdir(parents=True)
    (folder / "a.py").write_text(DAG.format(n=1))
    (folder / "lib" / "b.py").write_text(DAG.format(n=2))
    (folder / "lib" / "helpers.py").write_text(HELPER)
    monkeypatch.setattr(discovery, "_answers", {})
    monkeypatch.setenv(
        "AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE", "dagship.airflow.discovery.might_contain_dag"
    )
    yield folder


def listed(folder: Path) -> list[str]:
    return sorted(os.path.relpath(p, folder) for p in list_py_file_paths(folder, safe_mode=True))


def replace(path: Path, text: str) -> None:
    """Write ``text`` as a deploy does: a new file renamed over the old one (a new inode)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_it_lists_what_airflows_heuristic_lists(
    dags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert listed(dags) == ["a.py", "lib/b.py"]
    monkeypatch.delenv("AIRFLOW__CORE__MIGHT_CONTAIN_DAG_CALLABLE")
    assert listed(dags) == ["a.py", "lib/b.py"]  # Airflow's default heuristic


def test_a_changed_file_is_read_again(dags: Path) -> None:
    assert listed(dags) == ["a.py", "lib/b.py"]
    replace(dags / "lib" / "helpers.py", DAG.format(n=3))  # now a DAG file
    replace(dags / "a.py", HELPER)  # no longer one
    assert listed(dags) == ["lib/b.py", "lib/helpers.py"]
    # Written in place (same inode) with another size: read again as well.
    with (dags / "lib" / "helpers.py").open("w") as out:
        out.write(HELPER + "# no DAG here any more\n")
    assert listed(dags) == ["lib/b.py"]


def test_an_unchanged_file_is_not_read_again(dags: Path) -> None:
    assert listed(dags) == ["a.py", "lib/b.py"]
    helper = dags / "lib" / "helpers.py"
    before = helper.stat()
    # Same inode, size and mtime: the answer remembered, the content never read again. A
    # dagship tree never changes a file this way; this shows the listing did not open it.
    with helper.open("r+") as out:
        out.write(DAG.format(n=3)[: before.st_size].ljust(before.st_size))
    os.utime(helper, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert listed(dags) == ["a.py", "lib/b.py"]
    discovery._answers.clear()
    assert listed(dags) == ["a.py", "lib/b.py", "lib/helpers.py"]


def test_zipped_dag_packages_and_missing_files_are_airflows(tmp_path: Path) -> None:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("dag.py", DAG.format(n=1))
        archive.writestr("helper.py", HELPER)
    with zipfile.ZipFile(package) as archive:
        assert discovery.might_contain_dag("dag.py", zip_file=archive)
        assert not discovery.might_contain_dag("helper.py", zip_file=archive)
    assert discovery.might_contain_dag(str(package))  # an archive may hold DAGs
    with pytest.raises(FileNotFoundError):
        discovery.might_contain_dag(str(tmp_path / "gone.py"))


def test_the_memory_is_bounded(dags: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "MAX_REMEMBERED", 2)
    assert listed(dags) == ["a.py", "lib/b.py"]
    assert len(discovery._answers) <= 2
