"""`dagship` starts quickly: --version imports no command framework, and a command imports only
its own module (and not Pydantic for --help), while `dagship --help` still lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

from dagship.cli.main import COMMANDS
from tests.helpers import Cli, clean_env

# Runs `main(argv)` in a fresh interpreter and prints which modules it imported.
PROBE = """
import json, sys
from dagship.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _imported(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=clean_env() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["code"] == 0, done.stdout
    return set(last["modules"])


def test_version_is_answered_without_typer_or_rich() -> None:
    modules = _imported("--version")
    assert not {"typer", "rich", "pydantic", "httpx"} & modules
    assert not any(module.startswith("dagship.cli.") for module in modules - {"dagship.cli.main"})


def test_a_command_imports_only_its_own_module() -> None:
    modules = _imported("deploy", "--help")
    assert "dagship.cli.deploy" in modules
    assert "pydantic" not in modules
    others = {f"dagship.cli.{module}" for module, _ in COMMANDS.values()} - {
        "dagship.cli.deploy",
        "dagship.cli.deploys",  # deploy shows the checks' summary the way `deploys` does
    }
    assert not others & modules, sorted(others & modules)


def test_top_level_help_lists_every_command() -> None:
    out = Cli(None, None)("--help", env={"COLUMNS": "200"}).ok().out
    for name in COMMANDS:
        assert f" {name} " in out, name


def test_version_prints_the_version() -> None:
    from dagship import __version__

    assert Cli(None, None)("--version").ok().out == f"dagship {__version__}\n"
