"""The parse cache file of a project: what a parse keeps, and what it drops when it is full."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagship.validate import parse_cache
from dagship.validate.parse_cache import ParseCache


def test_entries_are_kept_across_parses_and_the_least_recently_used_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parse_cache, "MAX_ENTRIES", 3)
    project = tmp_path / "project"
    first = ParseCache(tmp_path, project)
    for key in ("a", "b", "c"):
        first.put(key, {"path": key})
    first.save(["a", "b", "c"])

    second = ParseCache(tmp_path, project)
    assert second.get("a") == {"path": "a"}
    second.put("d", {"path": "d"})
    second.save(["a", "d"])  # b and c were not used by this parse: b, the older, goes

    third = ParseCache(tmp_path, project)
    assert [third.get(k) is not None for k in "abcd"] == [True, False, True, True]
    assert ParseCache(tmp_path, tmp_path / "other").get("a") is None  # one file per project


def test_an_unreadable_cache_file_is_an_empty_cache(tmp_path: Path) -> None:
    project = tmp_path / "project"
    cache = ParseCache(tmp_path, project)
    cache.path.write_text("{not json")
    assert ParseCache(tmp_path, project).get("a") is None
    cache.path.write_text("[1, 2]")
    assert ParseCache(tmp_path, project).get("a") is None
