"""``--help`` answered from a cache: the text Typer printed for the same request last time.

Rendering a command's help imports Typer, Click and Rich (with Rich's Markdown) and lays out the
panels, 0.2 s of CPU where the interpreter starts in ~12 ms (docs/performance.md). The text
depends only on the request, on what it is printed to, and on the code that renders it, so it is
kept: one file per request under ``$DAGSHIP_CACHE_DIR/help/``, named by a digest of

- the arguments: only an exact help request, command names then ``--help`` or ``-h``;
- what it is printed to: whether stdout is a terminal, its encoding, the size of each standard
  stream's terminal, and the environment variables that Typer, Rich and gettext read
  (``RENDER_ENV``: ``COLUMNS``, ``NO_COLOR``, ``TERM``, ...);
- the code (``code_digest``): dagship's version, the interpreter, and the size and modification
  time of every module of dagship and of the libraries that render help (``RENDERERS``), so an
  edit or an upgrade renders it again.

A request not in the cache is rendered as it always was, and what it writes is recorded on the
way out; the text is kept only if the command exited 0, wrote nothing to stderr or past the text
stream, and the names are a path of commands. A cache folder that cannot be read or written only
means the help is rendered. Keeping a new entry removes the entries of other code versions.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    Render = Callable[[list[str]], Any]
    Invoke = Callable[[Any, list[str]], int]

HELP_OPTIONS = ("--help", "-h")

# The environment variables that change the rendered help. Rich: width, colour and terminal
# detection; Typer: its console's width and colour, and whether it uses Rich; gettext (Click's
# and Typer's fixed strings) and the interpreter: language and encoding.
RENDER_ENV = (
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "TERM",
    "COLORTERM",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
    "JUPYTER_COLUMNS",
    "JUPYTER_LINES",
    "DATABRICKS_RUNTIME_VERSION",
    "UNICODE_VERSION",
    "TERMINAL_WIDTH",
    "_TYPER_FORCE_DISABLE_TERMINAL",
    "GITHUB_ACTIONS",
    "PY_COLORS",
    "TYPER_USE_RICH",
    "LANGUAGE",
    "LC_ALL",
    "LC_MESSAGES",
    "LC_CTYPE",
    "LANG",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
)

# The packages whose modules render help, besides dagship's own.
RENDERERS = ("typer", "click", "rich", "markdown_it", "mdurl", "linkify_it", "pygments")

_HEADER = "dagship help cache 1\n"
_KEEP = 256  # entries kept at most; the oldest go first


def is_help_request(args: list[str]) -> bool:
    """Whether ``args`` only asks for help: command names, then ``--help`` or ``-h``."""
    return bool(args) and args[-1] in HELP_OPTIONS and all(map(_is_name, args[:-1]))


def _is_name(word: str) -> bool:
    return word[:1].isalpha() and word.replace("-", "").isalnum()


def show(args: list[str], command_for: Render, invoke: Invoke) -> int:
    """Print the help ``args`` asks for, from the cache or rendered (and then kept)."""
    entry = entry_path(args)
    if entry is not None:
        text = _load(entry)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return 0
    command = command_for(args)
    if entry is None:
        return invoke(command, args)
    return _render_and_keep(entry, args, command, invoke)


def _render_and_keep(entry: Path, args: list[str], command: Any, invoke: Invoke) -> int:
    """Render as always, recording the output; keep it if it is the whole of a good answer."""
    out, err = _Recorder(sys.stdout), _Recorder(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        code = invoke(command, args)
    finally:
        sys.stdout, sys.stderr = out.stream, err.stream
    text = "".join(out.parts)
    whole = out.clean and err.clean and not err.parts
    if code == 0 and text and whole and _names_commands(command, args[:-1]):
        _store(entry, text)
    return code


def entry_path(args: list[str]) -> Path | None:
    """The cache file of this help request here, or None when there can be none."""
    from dagship.files import cache_dir

    request = _terminal()
    if request is None:
        return None
    try:
        folder = cache_dir() / "help"
        code = code_digest()
    except (OSError, RuntimeError, KeyError, ValueError):  # no home folder, unreadable modules
        return None
    return folder / f"{code}-{_sha256([*args, '', *request])[:32]}"


def code_digest() -> str:
    """What the rendered help depends on in the installed code: 16 hex digits."""
    from dagship import __version__

    parts = [__version__, sys.version, sys.prefix]
    for name in ("dagship", *RENDERERS):
        folder = _package_folder(name)
        parts.append(f"{name}={folder}")
        if folder is not None:
            parts.extend(_modules(folder))
    return _sha256(parts)[:16]


def _package_folder(name: str) -> str | None:
    if name == "dagship":
        return os.path.dirname(sys.modules["dagship"].__file__ or "")
    # What ``importlib.util.find_spec`` asks, without importing it (and contextlib) on this path.
    spec = None
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        try:
            spec = find_spec(name, None) if find_spec is not None else None
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            break
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return next(iter(spec.submodule_search_locations))
    return spec.origin


def _modules(folder: str) -> list[str]:
    """``path size mtime`` of every Python module under ``folder`` (or of the one module)."""
    if folder.endswith(".py"):
        st = os.stat(folder)
        return [f"{folder} {st.st_size} {st.st_mtime_ns}"]
    found = []
    pending = [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    found.append(f"{entry.path} {st.st_size} {st.st_mtime_ns}")
    return sorted(found)


def _terminal() -> list[str] | None:
    """What the help is printed to, as Rich and Typer see it; None if stdout is missing."""
    stdout = sys.stdout
    if stdout is None:
        return None
    try:
        isatty = stdout.isatty()
    except (AttributeError, ValueError, OSError):
        return None
    if isatty and sys.platform == "win32":
        return None  # Rich may colour a Windows console through its API, not the text written
    parts = [
        sys.platform,
        f"isatty={isatty}",
        f"encoding={getattr(stdout, 'encoding', None)}",
        f"errors={getattr(stdout, 'errors', None)}",
    ]
    for fd in (0, 1, 2):
        try:
            parts.append(f"size{fd}={tuple(os.get_terminal_size(fd))}")
        except (OSError, ValueError):
            parts.append(f"size{fd}=None")
    parts.extend(f"{name}={os.environ.get(name)!r}" for name in RENDER_ENV)
    return parts


def _sha256(parts: list[str]) -> str:
    import hashlib

    data = "\n".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()


def _load(entry: Path) -> str | None:
    try:
        with open(entry, encoding="utf-8", newline="") as handle:
            content = handle.read()
    except (OSError, ValueError):
        return None
    if not content.startswith(_HEADER) or len(content) == len(_HEADER):
        return None
    return content[len(_HEADER) :]


def _store(entry: Path, text: str) -> None:
    """Keep ``text`` for ``entry``; best effort, silently."""
    from dagship.files import write_atomic

    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _prune(entry)
        write_atomic(entry, (_HEADER + text).encode("utf-8"))
    except (OSError, UnicodeError):
        return


def _prune(entry: Path) -> None:
    """Remove other code versions' entries, and the oldest when there are too many."""
    version = entry.name.split("-")[0] + "-"
    kept = []
    with os.scandir(entry.parent) as entries:
        for item in entries:
            if item.name.startswith("."):
                continue  # another process's entry being written
            if not item.name.startswith(version):
                _unlink(item.path)
            else:
                kept.append((item.stat().st_mtime_ns, item.path))
    for _, path in sorted(kept)[: max(0, len(kept) - _KEEP + 1)]:
        _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return


def _names_commands(command: Any, names: list[str]) -> bool:
    """Whether ``names`` is a path of (sub)commands from ``command``, no argument among them."""
    for name in names:
        command = getattr(command, "commands", {}).get(name)
        if command is None:
            return False
    return True


class _Recorder:
    """A standard stream that keeps what is written to it as text.

    Everything else is the stream's own (``isatty``, ``encoding``, ``fileno``), so Rich and Click
    render exactly as they would to the stream itself. A write to the binary ``buffer`` beneath
    (which Click uses for a stream it finds misconfigured) marks the recording unusable.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.parts: list[str] = []
        self.clean = True

    def write(self, text: Any) -> Any:
        written = self.stream.write(text)
        if isinstance(text, str):
            if text:
                self.parts.append(text)
        elif text:
            self.clean = False
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    @property
    def buffer(self) -> Any:
        return _WatchedBuffer(self.stream.buffer, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _WatchedBuffer:
    """The binary buffer beneath a recorded stream: a write there is not in the recording."""

    def __init__(self, buffer: Any, recorder: _Recorder) -> None:
        self._buffer = buffer
        self._recorder = recorder

    def write(self, data: Any) -> Any:
        if data:
            self._recorder.clean = False
        return self._buffer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)
