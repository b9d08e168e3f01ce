from __future__ import annotations

import hashlib
import json

import pytest

from dagship.core.manifest import (
    EMPTY_VERSION,
    MAX_PATH_BYTES,
    Manifest,
    ManifestDelta,
    ManifestEntry,
    ManifestError,
    check_path,
    delta,
    diff,
    is_digest,
    is_version,
)

D1 = hashlib.sha256(b"one").hexdigest()
D2 = hashlib.sha256(b"two").hexdigest()


def e(path: str, digest: str = D1, size: int = 3, executable: bool = False) -> ManifestEntry:
    return ManifestEntry(path, digest, size, executable)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "absolute"),
        ("../escape.py", "'..'"),
        ("a/../../b.py", "'..'"),
        ("a/./b.py", "'.'"),
        ("a//b.py", "empty"),
        ("a/", "empty"),
        ("", "empty"),
        ("a\\b.py", "backslash"),
        ("a\x00b.py", "control character"),
        ("a\x01b.py", "control character"),
        ("a\nb.py", "control character"),
        ("a\rb.py", "control character"),
        ("a\x1bb.py", "control character"),
        ("a\x7fb.py", "control character"),
        ("C:x.py", "drive letter"),
        ("c:/x.py", "drive letter"),
        ("x" * 256, "longer than 255 bytes"),
        ("a/" + "é" * 128 + "/b.py", "longer than 255 bytes"),  # 256 bytes of UTF-8
        ("a\ud800.py", "not valid UTF-8"),
        ("x" * (MAX_PATH_BYTES + 1), "longer than"),
        ("é" * (MAX_PATH_BYTES // 2 + 1), "longer than"),  # bytes, not characters
    ],
)
def test_bad_paths_are_refused_with_a_message(path: str, message: str) -> None:
    with pytest.raises(ManifestError, match=None) as info:
        check_path(path)
    assert message in str(info.value)
    with pytest.raises(ManifestError):
        Manifest.build([e(path)])


LONGEST = "/".join(["x" * 255] * 16)[:MAX_PATH_BYTES]


@pytest.mark.parametrize(
    "path", ["a.py", "dags/a.py", LONGEST, "x" * 255, "é/ü.py", ".hidden", "a/C:x.py", "ab:c"]
)
def test_good_paths_pass(path: str) -> None:
    check_path(path)
    assert Manifest.build([e(path)]).entries[0].path == path


def test_non_text_path_is_refused() -> None:
    with pytest.raises(ManifestError):
        check_path(None)
    with pytest.raises(ManifestError):
        check_path(b"a.py")


def test_duplicate_path_is_refused() -> None:
    with pytest.raises(ManifestError, match="duplicate"):
        Manifest.build([e("a.py", D1), e("a.py", D2)])


def test_file_that_is_also_a_folder_is_refused() -> None:
    with pytest.raises(ManifestError, match="folder"):
        Manifest.build([e("a"), e("a/b.py")])


@pytest.mark.parametrize("digest", ["", "abc", D1.upper(), D1[:-1] + "g", D1 + "0"])
def test_bad_digest_is_refused(digest: str) -> None:
    with pytest.raises(ManifestError, match="sha256"):
        Manifest.build([e("a.py", digest)])


@pytest.mark.parametrize("size", [-1, True, 1.5, "3"])
def test_bad_size_is_refused(size: object) -> None:
    with pytest.raises(ManifestError, match="size"):
        Manifest.build([e("a.py", size=size)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "item",
    [{"path": "a.py", "sha256": D1}, {"sha256": D1, "size": 1}, {"path": "a.py", "size": 1}],
)
def test_malformed_dicts_are_refused(item: dict[str, object]) -> None:
    with pytest.raises(ManifestError, match="malformed"):
        Manifest.from_dicts([item])


def test_entries_are_sorted_and_version_is_order_independent() -> None:
    entries = [e("b.py", D2), e("a.py", D1), e("c/d.py", D1, executable=True)]
    one = Manifest.build(entries)
    two = Manifest.build(reversed(entries))
    assert [x.path for x in one.entries] == ["a.py", "b.py", "c/d.py"]
    assert one.version == two.version
    assert is_version(one.version)
    assert one.version.startswith("sha256-")


def test_version_is_sha256_of_canonical_bytes() -> None:
    m = Manifest.build([e("z.py", D2, 7), e("a.py", D1, 3, True)])
    canonical = m.canonical_bytes()
    assert json.loads(canonical) == m.to_dicts()
    assert b" " not in canonical
    assert m.version == "sha256-" + hashlib.sha256(canonical).hexdigest()


def test_version_changes_with_any_field() -> None:
    base = Manifest.build([e("a.py")]).version
    assert Manifest.build([e("b.py")]).version != base
    assert Manifest.build([e("a.py", D2)]).version != base
    assert Manifest.build([e("a.py", size=4)]).version != base
    assert Manifest.build([e("a.py", executable=True)]).version != base


def test_round_trip_through_dicts_keeps_the_version() -> None:
    m = Manifest.build([e("a.py"), e("b/c.sh", D2, 10, True)])
    assert Manifest.from_dicts(json.loads(json.dumps(m.to_dicts()))).version == m.version


def test_empty_manifest() -> None:
    assert Manifest().version == EMPTY_VERSION
    assert Manifest.build([]).version == EMPTY_VERSION
    assert len(Manifest()) == 0
    assert Manifest().total_size == 0


def test_totals_and_digests() -> None:
    m = Manifest.build([e("a.py", D1, 3), e("b.py", D1, 3), e("c.py", D2, 5)])
    assert m.total_size == 11
    assert m.digests() == {D1, D2}
    assert set(m.by_path()) == {"a.py", "b.py", "c.py"}
    assert is_digest(D1) and not is_digest("sha256-" + D1)


def test_diff_added_removed_changed() -> None:
    old = Manifest.build([e("keep.py"), e("gone.py"), e("edit.py", D1), e("mode.sh")])
    new = Manifest.build(
        [e("keep.py"), e("new.py"), e("edit.py", D2), e("mode.sh", executable=True)]
    )
    d = diff(old, new)
    assert d.added == ["new.py"]
    assert d.removed == ["gone.py"]
    assert d.changed == ["edit.py", "mode.sh"]
    assert not d.empty
    assert d.to_dict() == {"added": d.added, "removed": d.removed, "changed": d.changed}
    back = diff(new, old)
    assert (back.added, back.removed) == (d.removed, d.added)
    assert diff(old, old).empty


def test_names_that_differ_only_in_case_or_unicode_form_are_refused() -> None:
    with pytest.raises(ManifestError, match="only in case or Unicode form"):
        Manifest.build([e("dags/Report.py"), e("dags/report.py")])
    with pytest.raises(ManifestError, match="only in case or Unicode form"):
        Manifest.build([e("caf\u00e9.py"), e("cafe\u0301.py")])  # NFC and NFD
    # Readers of deploys made before the rule still accept them.
    assert len(Manifest.build([e("A.py"), e("a.py")], portable=False)) == 2


def test_from_dicts_is_strict_about_types_and_keys() -> None:
    good = {"path": "a.py", "sha256": D1, "size": 3}
    assert Manifest.from_dicts([good]).entries[0].executable is False
    for bad, message in [
        ({**good, "executable": "no"}, "bad executable"),
        ({**good, "executable": 1}, "bad executable"),
        ({**good, "mode": 420}, "unknown keys"),
        ({"path": "a.py", "size": 3}, "it lacks sha256"),
        ({**good, "sha256": D1 + "\n"}, "bad sha256"),
        ({**good, "size": True}, "bad size"),
        ({**good, "size": 2**63}, "bad size"),
        ("a.py", "not an object"),
    ]:
        with pytest.raises(ManifestError, match=message):
            Manifest.from_dicts([bad])


def test_paths_of_mixed_types_are_refused_not_crashed_on() -> None:
    items = [{"path": "a.py", "sha256": D1, "size": 3}, {"path": 7, "sha256": D1, "size": 3}]
    with pytest.raises(ManifestError, match="non-text path"):
        Manifest.from_dicts(items)


def test_digest_and_version_checks_refuse_a_trailing_newline() -> None:
    assert is_digest(D1) and not is_digest(D1 + "\n")
    assert is_version(EMPTY_VERSION) and not is_version(EMPTY_VERSION + "\n")


def test_a_file_inside_a_file_is_found_among_many_paths() -> None:
    entries = [e(f"d{i:05}/{'x' * 200}/f.py") for i in range(2000)]
    assert len(Manifest.build(entries)) == 2000
    with pytest.raises(ManifestError, match="file and also a folder"):
        Manifest.build([*entries, e("d00042")])
    # "a-b" sorts between "a" and "a/b": the check does not stop at the first neighbour.
    with pytest.raises(ManifestError, match="file and also a folder"):
        Manifest.build([e("a"), e("a-b"), e("a/b")])


def test_a_delta_applied_to_its_base_gives_the_new_manifest() -> None:
    old = Manifest.build([e("keep.py"), e("gone.py"), e("edit.py", D1), e("d/mode.sh")])
    new = Manifest.build(
        [e("keep.py"), e("new/a.py"), e("edit.py", D2), e("d/mode.sh", executable=True)]
    )
    found = delta(old, new)
    assert (found.base, found.version) == (old.version, new.version)
    assert [entry.path for entry in found.changed] == ["d/mode.sh", "edit.py", "new/a.py"]
    assert found.removed == ("gone.py",)
    assert found.apply(old) == new and found.apply(old).version == new.version
    assert len(delta(new, new)) == 0 and delta(new, new).apply(new) is new


def test_a_delta_from_dicts_checks_each_entry_and_path_once() -> None:
    version = Manifest().version
    ok = ManifestDelta.from_dicts(version, version, [e("a.py").to_dict()], ["b.py"])
    assert ok.touched() == {"a.py", "b.py"}
    for changed, removed in (
        ([e("a.py").to_dict(), e("a.py", D2).to_dict()], []),
        ([e("a.py").to_dict()], ["a.py"]),
        ([], ["b.py", "b.py"]),
    ):
        with pytest.raises(ManifestError, match="twice"):
            ManifestDelta.from_dicts(version, version, changed, removed)
    with pytest.raises(ManifestError, match="absolute"):
        ManifestDelta.from_dicts(version, version, [], ["/etc/passwd"])
    with pytest.raises(ManifestError, match="sha256"):
        ManifestDelta.from_dicts(version, version, [{"path": "a", "sha256": "x", "size": 1}], [])


@pytest.mark.parametrize(
    ("changed", "removed", "message"),
    [
        ((), ("nowhere.py",), "not in base"),
        ((e("A.py"),), (), "only in case"),
        ((e("a.py/b.py"),), (), "folder"),
        ((e("x/y/z.py"), e("x/y")), (), "folder"),
    ],
)
def test_a_delta_that_does_not_apply_is_refused(
    changed: tuple[ManifestEntry, ...], removed: tuple[str, ...], message: str
) -> None:
    base = Manifest.build([e("a.py"), e("b.py")])
    with pytest.raises(ManifestError, match=message):
        ManifestDelta(base.version, base.version, changed, removed).apply(base)


def test_a_delta_that_gives_another_version_than_it_says_is_refused() -> None:
    base = Manifest.build([e("a.py")])
    with pytest.raises(ManifestError, match=r"not .* as it says"):
        ManifestDelta(base.version, base.version, (e("b.py"),)).apply(base)
