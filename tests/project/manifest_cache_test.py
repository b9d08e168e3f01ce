"""The manifests kept for the next deploy's deltas: the delta read from a kept manifest is the
one computed from the manifests themselves; damaged or missing files are not used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dagship.core.manifest import Manifest, ManifestEntry, delta
from dagship.project import manifest_cache


def e(path: str, content: str = "x", executable: bool = False) -> ManifestEntry:
    data = content.encode()
    return ManifestEntry(path, hashlib.sha256(data).hexdigest(), len(data), executable)


# Paths with spaces, non-ASCII text and line separators other than "\n", which a path may hold.
OLD = Manifest.build(
    [e("a b/c d.py"), e("caf\u00e9.py"), e("line\u2028sep.py"), e("next\x85line.py"), e("gone.py")]
)
NEW = Manifest.build(
    [
        e("a b/c d.py", "changed"),
        e("caf\u00e9.py", executable=True),
        e("line\u2028sep.py"),
        e("next\x85line.py"),
        e("added.py"),
    ]
)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(tmp_path))
    return tmp_path / "manifests"


def test_the_delta_from_a_kept_manifest_is_the_manifests_delta() -> None:
    manifest_cache.keep(OLD)
    assert manifest_cache.delta_from(OLD.version, NEW) == delta(OLD, NEW)
    assert manifest_cache.load(OLD.version) == OLD
    assert manifest_cache.delta_from(OLD.version, OLD) == delta(OLD, OLD)
    assert manifest_cache.delta_from(NEW.version, OLD) is None  # not kept


def test_a_damaged_or_foreign_file_is_not_used(cache: Path) -> None:
    manifest_cache.keep(OLD)
    kept = cache / f"{OLD.version}.manifest"
    kept.write_bytes(kept.read_bytes().replace(b"gone.py", b"here.py"))
    assert manifest_cache.delta_from(OLD.version, NEW) is None
    kept.write_bytes(b"")
    assert manifest_cache.delta_from(OLD.version, NEW) is None
    assert manifest_cache.delta_from("../../etc/passwd", NEW) is None


def test_a_version_its_entries_do_not_have_is_not_kept(cache: Path) -> None:
    manifest_cache.keep(Manifest.known(OLD.entries, NEW.version))
    assert not list(cache.glob("*"))


def test_only_the_newest_are_kept(cache: Path) -> None:
    manifests = [Manifest.build([e(f"f{i}.py")]) for i in range(manifest_cache.KEEP + 3)]
    for manifest in manifests:
        manifest_cache.keep(manifest)
    kept = {path.name.removesuffix(".manifest") for path in cache.glob("*.manifest")}
    assert len(kept) == manifest_cache.KEEP
    assert manifests[-1].version in kept
