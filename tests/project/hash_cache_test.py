"""The scan's hash cache: an unchanged file (same size, times and inode) is not read again, any
change to what stat says makes it read, and a missing or broken cache only means reading all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dagship.project.hash_cache import HashCache, stat_key
from dagship.project.scan import scan_project
from tests.helpers import make_project, sha256, write

HOUR_NS = 3600 * 10**9
FAKE = "f" * 64


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _digests(root: Path) -> dict[str, str]:
    scanned = scan_project(root)
    return {e.path: e.sha256 for e in scanned.dags.manifest.entries}


def _record_fake(root: Path, rel: str) -> Path:
    """Record a wrong hash for ``rel`` under its current stat key, as a scan would."""
    real = os.path.realpath(root)
    cache = HashCache(real, now_ns=time.time_ns() + HOUR_NS)
    cache.put(rel, stat_key(os.stat(root / rel)), FAKE)
    cache.save()
    return cache.path


def test_an_unchanged_file_is_taken_from_the_cache(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    _record_fake(root, "dags/dag_0.py")
    # The wrong hash shows the file was not read again (a real one would never be "fff…").
    assert _digests(root)["dag_0.py"] == FAKE


def test_a_file_whose_stat_changed_is_read_again(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    path = _record_fake(root, "dags/dag_0.py")
    body = json.loads(path.read_text())
    size, mtime_ns, ctime_ns, inode = body["files"]["dags/dag_0.py"][0]
    # Same size and modification time, another change time: rewritten with its times restored.
    body["files"]["dags/dag_0.py"][0] = [size, mtime_ns, ctime_ns - 1, inode]
    path.write_text(json.dumps(body))
    assert _digests(root)["dag_0.py"] == sha256((root / "dags" / "dag_0.py").read_bytes())


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    _record_fake(root, "dags/dag_0.py")
    write(root, "dags/dag_0.py", "# edited, a different size\n")
    assert _digests(root)["dag_0.py"] == sha256(b"# edited, a different size\n")


def test_a_broken_cache_means_reading_every_file(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    path = _record_fake(root, "dags/dag_0.py")
    path.write_text("{not json")
    digests = _digests(root)
    assert digests["dag_0.py"] == sha256((root / "dags" / "dag_0.py").read_bytes())


def test_files_changed_just_before_the_scan_are_not_recorded(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    real = os.path.realpath(root)
    key = stat_key(os.stat(root / "dags" / "dag_0.py"))
    fresh = HashCache(real)  # the file was written a moment ago
    fresh.put("dags/dag_0.py", key, FAKE)
    fresh.save()
    assert HashCache(real).get("dags/dag_0.py", key) is None


def test_a_scan_drops_the_entries_of_removed_files(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    real = os.path.realpath(root)
    write(root, "dags/gone.py", "# removed before the next scan\n")
    _record_fake(root, "dags/gone.py")
    (root / "dags" / "gone.py").unlink()
    scan_project(root)
    assert "dags/gone.py" not in json.loads(HashCache(real).path.read_text())["files"]
