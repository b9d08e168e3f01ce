"""`dagship agent run`'s arguments: refused before anything starts."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Cli


def test_standalone_with_other_components_is_refused(tmp_path: Path) -> None:
    result = Cli("http://127.0.0.1:9", "token")(
        "agent", "run", "-d", "prod", "-c", "standalone", "-c", "scheduler",
        "--home", tmp_path / "home",
    )  # fmt: skip
    result.failed("standalone already runs")
    assert not (tmp_path / "home").exists()


def test_an_unknown_component_or_grace_period_is_a_usage_error(tmp_path: Path) -> None:
    cli = Cli("http://127.0.0.1:9", "token")
    cli("agent", "run", "-d", "prod", "-c", "webserver").usage_error("webserver")
    cli(
        "agent", "run", "-d", "prod", "--grace-period", "soon", "--home", tmp_path / "home"
    ).failed("not a duration")  # fmt: skip
    assert not (tmp_path / "home").exists()
