"""`dagship` starts quickly: --version imports no command framework, a command imports only its
own module (and not Pydantic for --help), `dagship --help` still lists every command, and an exact
help request is answered from the help cache once rendered, byte for byte what Typer printed."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import dagship
from dagship.cli import help_cache
from dagship.cli.main import COMMANDS
from tests.helpers import Cli, clean_env, unique

# Runs `main(argv)` in a fresh interpreter and prints which modules it imported, on its last line.
PROBE = """
import json, sys
from dagship.cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
where = sys.modules["dagship"].__file__
print(json.dumps({"code": code, "modules": sorted(sys.modules), "dagship": where}))
"""
RENDERING = {"typer", "click", "rich"}


def _no_cache(tmp_path: Path) -> dict[str, str]:
    """A cache folder that cannot be made (its parent is a file): every help is rendered."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return {"DAGSHIP_CACHE_DIR": str(blocker / "cache")}


def _imported(*argv: str, env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=clean_env() | {"COLUMNS": "200"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["code"] == 0, done.stdout
    return set(last["modules"])


def test_version_is_answered_without_typer_or_rich(tmp_path: Path) -> None:
    modules = _imported("--version", env=_no_cache(tmp_path))
    assert not {"typer", "rich", "pydantic", "httpx"} & modules
    assert not any(module.startswith("dagship.cli.") for module in modules - {"dagship.cli.main"})


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    modules = _imported("deploy", "--help", env=_no_cache(tmp_path))
    assert "dagship.cli.deploy" in modules
    assert "pydantic" not in modules
    others = {f"dagship.cli.{module}" for module, _ in COMMANDS.values()} - {
        "dagship.cli.deploy",
        "dagship.cli.deploys",  # deploy shows the checks' summary the way `deploys` does
    }
    assert not others & modules, sorted(others & modules)


def test_a_command_that_calls_the_server_leaves_httpx_own_cli_unloaded(
    cli: Cli, project: Path
) -> None:
    # httpx imports its command line client (click, Rich's syntax, Pygments) unless told not to.
    name = unique()
    cli("deployment", "create", name).ok()
    modules = _imported("deploy", str(project), "-d", name, "--no-parse", env=cli.env())
    assert {"httpx", "dagship.client.api"} <= modules
    cli_only = {"click", "pygments", "rich.syntax"}
    assert not cli_only & modules, sorted(cli_only & modules)


def test_top_level_help_lists_every_command() -> None:
    out = Cli(None, None)("--help", env={"COLUMNS": "200"}).ok().out
    for name in COMMANDS:
        assert f" {name} " in out, name


def test_version_prints_the_version() -> None:
    from dagship import __version__

    assert Cli(None, None)("--version").ok().out == f"dagship {__version__}\n"


# --------------------------------------------------------------------------- the help cache


def _probe(env: dict[str, str], *argv: str, stdout: int | None = None) -> tuple[bytes, dict]:
    """`main(argv)` in a fresh interpreter: its exact output and what the probe reported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=clean_env() | {"COLUMNS": "100"} | env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    output, _, last = done.stdout.rstrip(b"\n").rpartition(b"\n")
    report = json.loads(last)
    assert report["code"] == 0, report
    return output + b"\n", report


def _cached(report: dict) -> bool:
    """Whether the probed run answered without importing what renders help."""
    return not RENDERING & set(report["modules"])


def _entries(cache: Path) -> list[Path]:
    folder = cache / "help"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_help_is_rendered_once_then_answered_from_the_cache(tmp_path: Path) -> None:
    rendered, report = _probe(_no_cache(tmp_path), "deploy", "--help")
    assert not _cached(report) and b"Usage: dagship deploy" in rendered
    env = {"DAGSHIP_CACHE_DIR": str(tmp_path / "cache")}
    first, report = _probe(env, "deploy", "--help")
    assert first == rendered and not _cached(report)
    assert len(_entries(tmp_path / "cache")) == 1
    again, report = _probe(env, "deploy", "--help")
    assert again == rendered and _cached(report)
    # Another width is another entry, rendered for that width.
    narrow, report = _probe(env | {"COLUMNS": "60"}, "deploy", "--help")
    assert not _cached(report) and narrow != rendered
    assert max(map(len, narrow.decode().splitlines())) <= 60
    assert len(_entries(tmp_path / "cache")) == 2


def _on_terminal(env: dict[str, str], columns: int, *argv: str) -> tuple[bytes, dict]:
    """The probe with stdout on a pseudo-terminal ``columns`` wide (no COLUMNS set)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    run_env = {k: v for k, v in (clean_env() | env).items() if k not in {"COLUMNS", "NO_COLOR"}}
    with subprocess.Popen(
        [sys.executable, "-c", PROBE, *argv],
        env=run_env | {"TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    ) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child has closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.stderr is not None and proc.stderr.read() == b""
    os.close(master)
    assert proc.returncode == 0
    output, _, last = b"".join(chunks).rstrip(b"\r\n").rpartition(b"\r\n")
    return output + b"\r\n", json.loads(last)


def test_help_on_a_terminal_is_kept_with_its_colours_and_width(tmp_path: Path) -> None:
    env = {"DAGSHIP_CACHE_DIR": str(tmp_path / "cache")}
    rendered, report = _on_terminal(env, 90, "deploy", "--help")
    assert not _cached(report) and b"\x1b[" in rendered  # Rich coloured it for the terminal
    again, report = _on_terminal(env, 90, "deploy", "--help")
    assert again == rendered and _cached(report)
    wider, report = _on_terminal(env, 120, "deploy", "--help")
    assert not _cached(report) and wider != rendered
    piped, report = _probe(env | {"TERM": "xterm-256color"}, "deploy", "--help")
    assert not _cached(report) and b"\x1b[" not in piped


def test_an_edit_to_the_code_renders_the_help_again(tmp_path: Path) -> None:
    source = tmp_path / "src"
    package = Path(dagship.__file__).parent
    shutil.copytree(package, source / "dagship", ignore=shutil.ignore_patterns("__pycache__"))
    pythonpath = os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))
    env = {"DAGSHIP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": pythonpath}
    first, report = _probe(env, "deploy", "--help")
    assert report["dagship"].startswith(str(source)), report["dagship"]
    again, report = _probe(env, "deploy", "--help")
    assert again == first and _cached(report)
    command = source / "dagship" / "cli" / "deploy.py"
    text = command.read_text(encoding="utf-8")
    assert "Deploy a project:" in text
    command.write_text(text.replace("Deploy a project:", "Ship a project:"), encoding="utf-8")
    edited, report = _probe(env, "deploy", "--help")
    assert not _cached(report) and b"Ship a project:" in edited
    # The same bytes with a new modification time count as a change too.
    stat = command.stat()
    os.utime(command, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched, report = _probe(env, "deploy", "--help")
    assert not _cached(report) and touched == edited
    cached, report = _probe(env, "deploy", "--help")
    assert _cached(report) and cached == edited
    assert len(_entries(tmp_path / "cache")) == 1  # older code versions' entries are removed


def test_an_unusable_cache_only_means_the_help_is_rendered(tmp_path: Path) -> None:
    reference, _ = _probe({"DAGSHIP_CACHE_DIR": str(tmp_path / "fresh")}, "deploy", "--help")
    out, report = _probe(_no_cache(tmp_path), "deploy", "--help")
    assert out == reference and not _cached(report)
    (tmp_path / "help-is-a-file").mkdir()
    (tmp_path / "help-is-a-file" / "help").write_text("")
    out, _ = _probe({"DAGSHIP_CACHE_DIR": str(tmp_path / "help-is-a-file")}, "deploy", "--help")
    assert out == reference
    # A damaged entry is rendered again and replaced.
    (entry,) = _entries(tmp_path / "fresh")
    entry.write_bytes(b"Usage: something else\n")
    out, report = _probe({"DAGSHIP_CACHE_DIR": str(tmp_path / "fresh")}, "deploy", "--help")
    assert out == reference and not _cached(report)
    assert entry.read_bytes().endswith(reference)


def test_only_exact_help_requests_are_kept(tmp_path: Path) -> None:
    env = {"DAGSHIP_CACHE_DIR": str(tmp_path / "cache")}
    cli = Cli(None, None)
    assert cli("deploy", "project", "--help", env=env).ok().out  # an argument, then --help
    assert cli("deploy", "./project", "--help", env=env).ok().out
    assert cli("deploy", "--json", "--help", env=env).ok().out
    assert cli("no-such-command", "--help", env=env).code == 2
    assert cli("deploy", "--help", "--json", env=env).ok().out
    assert _entries(tmp_path / "cache") == []
    assert (
        cli("deploys", "list", "-h", env=env).ok().out == cli("deploys", "list", "-h", env=env).out
    )
    assert len(_entries(tmp_path / "cache")) == 1
    assert help_cache.is_help_request(["--help"]) and help_cache.is_help_request(["ci", "-h"])
    assert not help_cache.is_help_request(["deploy"]) and not help_cache.is_help_request([])


# Environment variables Typer, Click and Rich read that do not change a rendered help: shell
# completion, the pager, where completion scripts are installed, tracebacks, and one that Typer
# sets for itself.
NOT_FOR_HELP = {
    "COMP_WORDS", "COMP_CWORD", "_TYPER_COMPLETE_ARGS", "_TYPER_COMPLETE_FISH_ACTION",
    "_TYPER_COMPLETE_WORD_TO_COMPLETE", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION",
    "PAGER", "LESS", "HOME", "XDG_CONFIG_HOME", "TYPER_STANDARD_TRACEBACK",
    "_TYPER_STANDARD_TRACEBACK", "PYDANTIC_DISABLE_PLUGINS",
}  # fmt: skip
ENV_READ = re.compile(
    r"""(?:getenv|environ\.get|environ\[)\(?\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)


def test_the_cache_key_has_every_variable_the_renderers_read() -> None:
    read: set[str] = set()
    for name in ("typer", "click", "rich"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        for module in Path(spec.origin).parent.rglob("*.py"):
            read |= set(ENV_READ.findall(module.read_text(encoding="utf-8")))
    assert {"COLUMNS", "NO_COLOR", "TERM", "TERMINAL_WIDTH"} <= read  # the scan finds them
    assert read - NOT_FOR_HELP <= set(help_cache.RENDER_ENV), sorted(read - NOT_FOR_HELP)
