"""dagship.core.kinds: the kind of a deploy, shared by deploy, rollback and promote."""

from __future__ import annotations

import pytest

from dagship.core.kinds import Versions, choose_kind
from dagship.core.vocabulary import Kind, Mode

OLD = Versions("sha256-d1", "sha256-p1")
NEW_DAGS = Versions("sha256-d2", "sha256-p1")
NEW_PROJECT = Versions("sha256-d1", "sha256-p2")
BOTH = Versions("sha256-d2", "sha256-p2")

CASES = [
    # mode, dag_deploys, current, new, kind
    (Mode.AUTO, True, None, OLD, Kind.FULL),
    (Mode.AUTO, True, OLD, OLD, None),
    (Mode.AUTO, True, OLD, NEW_DAGS, Kind.DAGS),
    (Mode.AUTO, True, OLD, NEW_PROJECT, Kind.PROJECT),
    (Mode.AUTO, True, OLD, BOTH, Kind.FULL),
    (Mode.AUTO, False, OLD, NEW_DAGS, Kind.FULL),
    (Mode.AUTO, False, OLD, NEW_PROJECT, Kind.FULL),
    (Mode.AUTO, False, OLD, OLD, None),
    (Mode.DAGS, True, OLD, NEW_DAGS, Kind.DAGS),
    (Mode.DAGS, True, OLD, NEW_PROJECT, None),
    (Mode.DAGS, True, OLD, BOTH, Kind.DAGS),
    (Mode.DAGS, True, None, OLD, Kind.DAGS),
    (Mode.PROJECT, True, OLD, NEW_PROJECT, Kind.PROJECT),
    (Mode.PROJECT, True, OLD, NEW_DAGS, None),
    (Mode.PROJECT, True, OLD, BOTH, Kind.PROJECT),
    (Mode.PROJECT, False, OLD, NEW_DAGS, Kind.FULL),
    (Mode.PROJECT, False, OLD, OLD, None),
    (Mode.FULL, True, OLD, NEW_DAGS, Kind.FULL),
    (Mode.FULL, True, OLD, NEW_PROJECT, Kind.FULL),
    (Mode.FULL, True, OLD, OLD, None),
    (Mode.FULL, True, None, OLD, Kind.FULL),
]


@pytest.mark.parametrize(("mode", "dag_deploys", "current", "new", "kind"), CASES)
def test_choose_kind(
    mode: Mode, dag_deploys: bool, current: Versions | None, new: Versions, kind: Kind | None
) -> None:
    assert choose_kind(current, new, dag_deploys=dag_deploys, mode=mode) == kind


def test_kinds_are_their_api_strings() -> None:
    assert [str(kind) for kind in Kind] == ["dags", "project", "full"]
    assert Kind.DAGS == "dags"
