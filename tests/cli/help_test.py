"""Every command's --help names the values it takes (URL, N, SECONDS, [viewer|...]) and shows
no Python type tags (`<str>`, `<bool>`, `<int range>`)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from dagship.cli.main import app
from tests.helpers import Cli

TYPE_TAG = re.compile(r"<[a-z][a-z ]*>")
WIDE = {"COLUMNS": "200"}


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _paths(sub, (*prefix, name))
    return paths


COMMANDS = _paths(typer.main.get_command(app))


def test_every_command_is_checked() -> None:
    assert len(COMMANDS) > 30
    assert ("deploys", "list") in COMMANDS and ("token", "create") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "dagship")
def test_help_has_no_type_tags(path: tuple[str, ...]) -> None:
    result = Cli(None, None)(*path, "--help", env=WIDE).ok()
    assert "Usage:" in result.out
    assert not TYPE_TAG.findall(result.out), result.out


def test_values_are_named_and_flags_take_none() -> None:
    cli = Cli(None, None)
    listing = cli("deploys", "list", "--help", env=WIDE).ok().out
    assert re.search(r"--limit +N \[1<=x<=1000\]", listing), listing
    assert re.search(r"--url +URL ", listing), listing
    assert re.search(r"--json +Print one JSON", listing), listing
    assert re.search(r"--help +-h +Show this message", listing), listing
    token = cli("token", "create", "--help", env=WIDE).ok().out
    assert "[viewer|dag-author|operator|admin]" in token
    assert re.search(r"--expires-in +DURATION ", token), token
    rollback = cli("rollback", "--help", env=WIDE).ok().out
    assert re.search(r"--to +SEQ\|REF ", rollback), rollback
    assert re.search(r"--timeout +SECONDS ", rollback), rollback
    assert re.search(r"\* +NAME +Deployment name", rollback), rollback
