"""dagship.core.naming: deployment, bundle and preview names."""

from __future__ import annotations

import hashlib

import pytest

from dagship.core.naming import (
    MAX_NAME,
    PreviewNameError,
    bundle_name,
    is_deployment_name,
    preview_name,
)


def test_bundle_name_is_prefixed_deployment() -> None:
    assert bundle_name("prod") == "dagship-prod"


@pytest.mark.parametrize("name", ["a", "prod", "preview-x-1", "a" * 63, "0dev"])
def test_good_deployment_names(name: str) -> None:
    assert is_deployment_name(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "Prod", "a_b", "a" * 64, "a.b"])
def test_bad_deployment_names(name: str) -> None:
    assert not is_deployment_name(name)


@pytest.mark.parametrize(
    ("branch", "name"),
    [
        ("feature/ABC-12 fix", "preview-feature-abc-12-fix"),
        ("main", "preview-main"),
        ("--x__y--", "preview-x-y"),
    ],
)
def test_preview_names(branch: str, name: str) -> None:
    assert preview_name(branch) == name
    assert is_deployment_name(name)


def test_long_branches_are_cut_and_told_apart_by_a_hash() -> None:
    first, second = "feature/" + "a" * 80 + "-one", "feature/" + "a" * 80 + "-two"
    one, two = preview_name(first), preview_name(second)
    assert len(one) == len(two) == MAX_NAME
    assert one != two
    assert one.endswith("-" + hashlib.sha256(first.encode()).hexdigest()[:8])
    assert is_deployment_name(one)


@pytest.mark.parametrize("branch", ["", "///", "ü"])
def test_branch_without_letters_or_digits(branch: str) -> None:
    with pytest.raises(PreviewNameError, match="no letters or digits"):
        preview_name(branch)
