"""The scan's hash cache: an unchanged file (same size, times and inode) is not read again, any
change to what stat says makes it read, and a missing or broken cache only means reading all."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dagship.core.manifest import Manifest
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


BOGUS = "sha256-" + "e" * 64


def _record_all(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Scan with every file settled (recorded), then put a wrong DAG bundle version in place of
    the recorded one: a scan that reuses the recorded version shows it."""
    monkeypatch.setattr("dagship.project.hash_cache._SETTLE_NS", -1)
    scan_project(root)
    path = HashCache(os.path.realpath(root)).path
    body = json.loads(path.read_text())
    body["versions"]["dags"] = BOGUS
    path.write_text(json.dumps(body))
    return path


def test_an_unchanged_project_keeps_the_recorded_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(tmp_path / "p")
    first = scan_project(root)
    assert first.dags.version == Manifest.build(first.dags.manifest.entries).version
    _record_all(monkeypatch, root)
    again = scan_project(root)
    # Not hashed again: the recorded version (here a wrong one) is taken as it is.
    assert again.dags.version == BOGUS
    assert again.dags.manifest.entries == first.dags.manifest.entries
    assert again.project.version == first.project.version


@pytest.mark.parametrize("change", ["edit", "add", "remove", "chmod", "unsettled"])
def test_any_change_to_the_files_computes_the_versions_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    root = make_project(tmp_path / "p")
    write(root, "dags/extra.py", "# one more\n")
    _record_all(monkeypatch, root)
    if change == "edit":
        write(root, "dags/dag_0.py", "# edited\n")
    elif change == "add":
        write(root, "dags/new.py", "# new\n")
    elif change == "remove":
        (root / "dags" / "extra.py").unlink()
    elif change == "chmod":
        (root / "dags" / "extra.py").chmod(0o755)
    else:
        # A file that changed too recently to be recorded: the versions are not kept either.
        monkeypatch.setattr("dagship.project.hash_cache._SETTLE_NS", HOUR_NS)
        write(root, "dags/dag_0.py", "# edited just now\n")
        scan_project(root)
    scanned = scan_project(root)
    assert scanned.dags.version != BOGUS
    assert scanned.dags.version == Manifest.build(scanned.dags.manifest.entries).version


def test_a_file_too_recent_to_record_then_deleted_leaves_no_recorded_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deploy that fixes a broken DAG by deleting the file it had just written: the scan
    before recorded every other file, so the deleted one must not live on in its versions."""
    root = make_project(tmp_path / "p")
    monkeypatch.setattr("dagship.project.hash_cache._SETTLE_NS", -1)
    scan_project(root)
    monkeypatch.setattr("dagship.project.hash_cache._SETTLE_NS", HOUR_NS)
    write(root, "dags/broken.py", "# written just now\n")
    with_it = scan_project(root)
    (root / "dags" / "broken.py").unlink()
    without = scan_project(root)
    assert "broken.py" not in {e.path for e in without.dags.manifest.entries}
    assert without.dags.version != with_it.dags.version
    assert without.dags.version == Manifest.build(without.dags.manifest.entries).version
