"""Deploy references: the four forms, and text that is none of them."""

from __future__ import annotations

import pytest

from dagship.core.refs import DeployRef, DeployRefError, parse_ref, unknown_deployment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prod", DeployRef("prod", deployment="prod")),
        (" prod ", DeployRef("prod", deployment="prod")),
        ("prod:5", DeployRef("prod:5", deployment="prod", seq=5)),
        ("prod~1", DeployRef("prod~1", deployment="prod", back=1)),
        ("prod~", DeployRef("prod~", deployment="prod", back=1)),
        ("prod~12", DeployRef("prod~12", deployment="prod", back=12)),
        ("prod~0", DeployRef("prod~0", deployment="prod")),
        ("dpl_3f9c0a", DeployRef("dpl_3f9c0a", deploy_id="dpl_3f9c0a")),
        ("1", DeployRef("1", deployment="1")),
    ],
)
def test_each_form(text: str, expected: DeployRef) -> None:
    assert parse_ref(text) == expected


def test_current_is_name_or_tilde_zero() -> None:
    assert parse_ref("prod").is_current and parse_ref("prod~0").is_current
    assert not any(parse_ref(t).is_current for t in ("prod:1", "prod~1", "dpl_ab"))


@pytest.mark.parametrize(
    "text",
    ["", "prod:", "prod:x", "prod:0", "prod~x", "Prod", "prod:1~1", "dpl_", "dpl_XYZ", "a_b"],
)
def test_not_a_reference_names_the_forms(text: str) -> None:
    with pytest.raises(DeployRefError) as caught:
        parse_ref(text)
    message = str(caught.value)
    assert repr(text) in message
    for form in ("NAME (its current deploy)", "NAME:SEQ", "NAME~N", "dpl_"):
        assert form in message


def test_unknown_deployment_tells_a_number_how_to_say_it() -> None:
    assert "write NAME:1" in unknown_deployment("1", "1")
    assert "write NAME" not in unknown_deployment("prod", "prod")
    assert "NAME~N" in unknown_deployment("prod~2", "prod")
