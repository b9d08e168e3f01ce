"""A project's ``requirements.txt`` as pip reads it, made into what uv installs.

The environment is built with uv, but the file is the one ``pip install -r requirements.txt``
reads in the project's folder (an Astro image's build), so its lines mean what they mean to pip:

- ``-r other.txt`` and ``-c constraints.txt`` are read relative to the file that names them;
  they must be files the project deploys (inside it, not ignored).
- Local packages (``./pkg``, ``-e ./pkg``, ``-e .``, ``name @ file:pkg``, ``dist/x.whl``) are
  read relative to the project's folder and must be deployed with it. They are installed from
  a copy of exactly the files the project deploys, so the environment's key covers their
  content and a changed package builds a new environment. ``-e`` installs them like any other
  package: an environment is shared by every project version with the same key, so it must
  not point into one of them.
- ``-i/--index-url``, ``--extra-index-url``, ``--no-index``, ``-f/--find-links`` (a URL, or a
  folder of the project), ``--only-binary``, ``--no-binary`` and ``--hash`` go to uv as
  written; uv checks each hash given (a mismatch fails the build). ``--pre`` and
  ``--trusted-host`` become uv's ``--prerelease allow`` and ``--allow-insecure-host``.
- Everything else is refused with the file, the line and what to do: options uv ignores or
  lacks (``--prefer-binary``, ``--use-feature``, ``--require-hashes``, per-line
  ``--config-settings``...), ``-r`` from a URL, and paths outside the project or absolute
  ones, which a checkout or an Airflow host elsewhere would not have.

``Requirements.key_data`` is everything that determines the install; ``write_for_uv`` writes
the files uv reads, line for line (uv's messages keep pip's line numbers).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shlex
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dagship.core.manifest import Manifest, ManifestEntry
from dagship.environment.errors import EnvironmentBuildError
from dagship.project.scan import ScannedTree, scan_project

REQUIREMENTS = "requirements.txt"
# uv's environment variables that choose where packages come from or which versions win.
UV_SETTINGS = (
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INDEX_STRATEGY",
    "UV_PRERELEASE",
    "UV_RESOLUTION",
    "UV_EXCLUDE_NEWER",
    "UV_NO_BINARY",
    "UV_ONLY_BINARY",
    "UV_CONSTRAINT",
    "UV_OVERRIDE",
    "UV_TORCH_BACKEND",
)
# pip's comment rule: `#` at the start of a line or after white space.
_COMMENT = re.compile(r"(^|\s+)#.*$")
_NAMED_URL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?)\s*@\s*(?P<url>\S+)")
_ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".zip")
# The options of a requirements file: canonical name, and whether it takes a value.
_OPTIONS = {
    "-r": ("--requirement", True),
    "--requirement": ("--requirement", True),
    "-c": ("--constraint", True),
    "--constraint": ("--constraint", True),
    "-e": ("--editable", True),
    "--editable": ("--editable", True),
    "-i": ("--index-url", True),
    "--index-url": ("--index-url", True),
    "--extra-index-url": ("--extra-index-url", True),
    "--no-index": ("--no-index", False),
    "-f": ("--find-links", True),
    "--find-links": ("--find-links", True),
    "--only-binary": ("--only-binary", True),
    "--no-binary": ("--no-binary", True),
    "--pre": ("--pre", False),
    "--trusted-host": ("--trusted-host", True),
    "--prefer-binary": ("--prefer-binary", False),
    "--require-hashes": ("--require-hashes", False),
    "--use-feature": ("--use-feature", True),
    "--hash": ("--hash", True),
    "--global-option": ("--global-option", True),
    "--config-settings": ("--config-settings", True),
    "-C": ("--config-settings", True),
    "--install-option": ("--install-option", True),
}
_PASSED = ("--index-url", "--extra-index-url", "--no-index", "--only-binary", "--no-binary")
_REFUSED = {
    "--prefer-binary": "uv has no such option: remove the line and pin the version you want "
    "with `==`",
    "--use-feature": "uv has no such option: remove the line (for the system's certificates "
    "set UV_NATIVE_TLS=1 where dagship runs)",
    "--require-hashes": "dagship adds apache-airflow and pytest, which carry no hashes: remove "
    "the line; the hashes given on each line are still checked",
    "--global-option": "uv cannot pass build options: remove it, or publish a built wheel",
    "--config-settings": "uv cannot take it on a requirement line: remove it, or publish a "
    "built wheel",
    "--install-option": "pip and uv no longer support it: remove it",
}


@dataclass(frozen=True)
class LocalSource:
    """A package, wheel or wheel folder of the project that the environment installs from."""

    path: str  # relative to the project: "pkg", "dist/x.whl", "." for the project itself
    files: Manifest  # its files as the project deploys them, relative to ``path``'s folder
    disk: Mapping[str, str]  # sha256 -> a file on disk with that content
    is_file: bool = False  # a wheel or an archive rather than a folder


@dataclass(frozen=True)
class Copy:
    """Where a local source is when uv reads the rewritten files (filled in by write_for_uv)."""

    path: str
    url: bool = False  # as a file:// URL (``name @ file://...``)


@dataclass(frozen=True)
class Rewrite:
    """A logical line uv gets instead of the one written (local paths, translated options)."""

    file: str
    line: int  # its first physical line
    span: int  # how many physical lines it covers
    parts: tuple[str | Copy, ...]


@dataclass(frozen=True)
class Requirements:
    """``requirements.txt`` and what it names, read as pip reads it."""

    texts: dict[str, str]  # every requirements or constraints file read, by project path
    sources: dict[str, LocalSource] = field(default_factory=dict)
    rewrites: tuple[Rewrite, ...] = ()
    uv_options: tuple[str, ...] = ()  # added to `uv pip install` (--pre, --trusted-host)

    def key_data(self) -> dict[str, object]:
        """What the install depends on besides Airflow and Python: the files' texts and the
        content of the local packages (relative paths only: the same on every machine)."""
        sources = {path: source.files.version for path, source in self.sources.items()}
        return {"files": self.texts, "sources": sources}

    def write_for_uv(self, folder: Path) -> Path:
        """Write the files uv reads into ``folder`` (emptied first): the requirements files,
        rewritten line for line, under ``requirements/`` and copies of the local sources
        under ``project/``; the path of the top ``requirements.txt``."""
        shutil.rmtree(folder, ignore_errors=True)
        for source in self.sources.values():
            _copy_source(source, folder / "project")
        by_file: dict[str, list[Rewrite]] = {}
        for rewrite in self.rewrites:
            by_file.setdefault(rewrite.file, []).append(rewrite)
        for rel, text in self.texts.items():
            lines = text.splitlines()
            for rewrite in by_file.get(rel, []):
                parts = (_render(part, folder / "project") for part in rewrite.parts)
                rendered = "".join(parts).rstrip()
                start = rewrite.line - 1
                lines[start : start + rewrite.span] = [rendered] + [""] * (rewrite.span - 1)
            target = folder / "requirements" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder / "requirements" / REQUIREMENTS


def uv_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The uv settings of ``environ`` that change what an install resolves to."""
    return {name: environ[name] for name in UV_SETTINGS if name in environ}


def read_requirements(project: Path) -> Requirements | None:
    """The project's ``requirements.txt`` and all it names; None without one.

    Raises EnvironmentBuildError naming the file and line of anything uv cannot install as pip
    would, and saying what to do."""
    try:
        text = (project / REQUIREMENTS).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentBuildError(f"cannot read {project / REQUIREMENTS}: {exc}") from exc
    reader = _Reader(project)
    reader.read_file(REQUIREMENTS, text, ())
    return Requirements(reader.texts, reader.sources, tuple(reader.rewrites), reader.uv_options)


class _Reader:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.texts: dict[str, str] = {}
        self.sources: dict[str, LocalSource] = {}
        self.rewrites: list[Rewrite] = []
        self.uv_options: tuple[str, ...] = ()
        self._deployed: ScannedTree | None = None

    def read_file(self, rel: str, text: str, chain: tuple[str, ...]) -> None:
        self.texts[rel] = text
        for number, span, line in logical_lines(text):
            where = _Where(rel, number)
            parts = self._line(line, where, (*chain, rel))
            if parts is not None:
                self.rewrites.append(Rewrite(rel, number, span, parts))

    def _line(
        self, line: str, where: _Where, chain: tuple[str, ...]
    ) -> tuple[str | Copy, ...] | None:
        requirement, options = _break_args_options(line)
        if not requirement:
            return self._option_line(options, where, chain)
        for name, _value in _options(options, where):
            if name != "--hash":
                raise where.error(f"`{name}` on a requirement line: {_refusal(name)}")
        local = _local_requirement(requirement)
        if local is None:
            return None
        prefix, raw, suffix, url = local
        rel = self._source(_inside(raw, "", where), where)
        rest = f" {options}" if options else ""
        return (prefix, Copy(rel, url), suffix + rest)

    def _option_line(
        self, options: str, where: _Where, chain: tuple[str, ...]
    ) -> tuple[str | Copy, ...] | None:
        out: list[str | Copy] = []
        changed = False
        base = posixpath.dirname(where.file)
        for name, value in _options(options, where):
            written: list[str | Copy] = [name] if value is None else [name, " ", value]
            if name in ("--requirement", "--constraint") and value is not None:
                self._include(value, base, where, chain)
            elif name in _PASSED or (name == "--find-links" and not _is_local(value or "")):
                pass
            elif name == "--find-links" and value is not None:
                written = [name, " ", Copy(self._source(_inside(value, base, where), where))]
            elif name == "--editable" and value is not None:
                written = self._editable(value, where)
            elif name == "--pre":
                self.uv_options += ("--prerelease", "allow")
                written = []
            elif name == "--trusted-host" and value is not None:
                self.uv_options += ("--allow-insecure-host", value)
                written = []
            else:
                raise where.error(f"`{name}`: {_refusal(name)}")
            changed = changed or name in ("--find-links", "--editable", "--pre", "--trusted-host")
            out += [*written, " "]
        return tuple(out) if changed else None

    def _editable(self, value: str, where: _Where) -> list[str | Copy]:
        # An environment is shared by every project version with its key, so nothing in it
        # may point into one version's folder: a local package is installed, not linked.
        path, extras = _split_extras(value)
        if not _is_local(path):
            return [value]  # a VCS URL: uv installs it like pip would, without -e
        return [Copy(self._source(_inside(path, "", where), where)), extras]

    def _include(self, value: str, base: str, where: _Where, chain: tuple[str, ...]) -> None:
        if "://" in value:
            raise where.error(
                f"`{value}` is read from the network, so what it says could change without the "
                "project changing: save it in the project and name the file instead"
            )
        rel = _inside(value, base, where)
        if rel in chain:
            raise where.error(f"{rel} includes itself (through {' -> '.join(chain)})")
        if rel in self.texts:
            return
        self._deployed_file(rel, where)
        try:
            text = (self.project / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise where.error(f"cannot read {rel}: {exc}") from exc
        self.read_file(rel, text, chain)

    def _deployed_file(self, rel: str, where: _Where) -> None:
        if rel not in self.deployed().manifest.by_path():
            raise where.error(_not_deployed(rel))

    def _source(self, rel: str, where: _Where) -> str:
        if rel in self.sources:
            return rel
        tree = self.deployed()
        prefix = "" if rel == "." else rel + "/"
        entries = [e for e in tree.manifest.entries if e.path == rel or e.path.startswith(prefix)]
        if not entries:
            raise where.error(_not_deployed(rel))
        is_file = entries[0].path == rel
        folder = posixpath.dirname(rel) if is_file else "" if rel == "." else rel
        strip = len(folder) + 1 if folder else 0
        files = Manifest.build(
            ManifestEntry(e.path[strip:], e.sha256, e.size, e.executable) for e in entries
        )
        disk = {e.sha256: tree.files[e.sha256] for e in entries}
        self.sources[rel] = LocalSource(rel, files, disk, is_file)
        return rel

    def deployed(self) -> ScannedTree:
        """The project as it deploys (ignore rules applied, without dags/), scanned once."""
        if self._deployed is None:
            self._deployed = scan_project(self.project).project
        return self._deployed


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, message: str) -> EnvironmentBuildError:
        return EnvironmentBuildError(f"{self.file} line {self.line}: {message}")


def logical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """``(first line number, physical lines, text)`` of each line pip reads: lines ending in
    a backslash joined with the next, comments and blank lines dropped."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start, joined = index, ""
        while index < len(lines):
            line = lines[index]
            index += 1
            if not line.endswith("\\") or _COMMENT.match(line):
                joined += line
                break
            joined += line[:-1]
        stripped = _COMMENT.sub("", joined).strip()
        if stripped:
            yield start + 1, index - start, stripped


def _break_args_options(line: str) -> tuple[str, str]:
    """pip's split of a line into the requirement and the options after it."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:index]).strip(), " ".join(tokens[index:]).strip()
    return line.strip(), ""


def _options(text: str, where: _Where) -> Iterator[tuple[str, str | None]]:
    """``(canonical name, value)`` of each option, in the forms pip takes: ``--name value``,
    ``--name=value``, ``-x value``, ``-xvalue``."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise where.error(f"cannot read the options ({exc})") from exc
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        written, value = token, None
        if token.startswith("--") and "=" in token:
            written, value = token.split("=", 1)
        if written not in _OPTIONS and not written.startswith("--") and written[:2] in _OPTIONS:
            written, value = written[:2], written[2:]
        if written not in _OPTIONS:
            raise where.error(
                f"`{written}` is not an option of a requirements file (pip and uv do not know "
                "it): remove it"
            )
        name, takes_value = _OPTIONS[written]
        if takes_value and value is None:
            if index >= len(tokens):
                raise where.error(f"`{written}` needs a value")
            value = tokens[index]
            index += 1
        yield name, value


def _refusal(name: str) -> str:
    return _REFUSED.get(name, "uv cannot take it here: remove it")


def _is_local(value: str) -> bool:
    """Whether an option's value or a requirement names a path rather than a URL or a name."""
    if value.startswith("file:"):
        return True
    if "://" in value or "@" in value:
        return False
    return value.startswith((".", "/", "~")) or "/" in value or value.endswith(_ARCHIVES)


def _local_requirement(requirement: str) -> tuple[str, str, str, bool] | None:
    """``(text before, path, text after, as a URL)`` of a requirement naming a local path."""
    named = _NAMED_URL.match(requirement)
    if named:
        url = named["url"]
        if not _is_local(url):
            return None
        return f"{named['name'].strip()} @ ", url, requirement[named.end() :], True
    spec, semicolon, marker = requirement.partition(";")
    path, extras = _split_extras(spec.strip())
    if not _is_local(path):
        return None
    return "", path, extras + (f" ;{marker}" if semicolon else ""), False


def _split_extras(value: str) -> tuple[str, str]:
    if value.endswith("]") and "[" in value:
        index = value.rindex("[")
        return value[:index], value[index:]
    return value, ""


def _inside(raw: str, base: str, where: _Where) -> str:
    """The project path (posix, relative) that ``raw``, written in a file in ``base``, names;
    EnvironmentBuildError for one that is absolute or outside the project."""
    path = raw
    if path.startswith("file:"):
        parts = urlsplit(path)
        path = unquote(parts.path) if parts.netloc in ("", "localhost") else path
    if path.startswith(("/", "~")) or "://" in path:
        raise where.error(
            f"{raw} is an absolute path: write it relative to the project (for example "
            "`./packages/mylib`), so that it names the same files in every checkout and on "
            "every Airflow host"
        )
    rel = posixpath.normpath(posixpath.join(base, path))
    if rel == ".." or rel.startswith("../"):
        raise where.error(
            f"{raw} is outside the project, so the deployed project would not have it: move it "
            "into the project (for example `packages/`) or publish it to a package index"
        )
    if rel == "dags" or rel.startswith("dags/"):
        raise where.error(
            f"{raw} is in dags/, which deploys as the DAG bundle, not with the project: move "
            "it out of dags/ (for example to `packages/`)"
        )
    return rel


def _not_deployed(rel: str) -> str:
    return (
        f"{rel} is not part of the deployed project (it does not exist, or .dagshipignore or "
        ".gitignore leaves it out): add it, or stop naming it"
    )


def _render(part: str | Copy, folder: Path) -> str:
    if isinstance(part, str):
        return part
    path = folder if part.path == "." else folder / part.path
    return path.as_uri() if part.url else str(path)


def _copy_source(source: LocalSource, folder: Path) -> None:
    """Copy a local source's deployed files, checking each still has the hashed content."""
    base = folder if source.path == "." else folder / source.path
    if source.is_file:
        base = base.parent  # its one entry is the file's own name
    for entry in source.files.entries:
        data = Path(source.disk[entry.sha256]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise EnvironmentBuildError(
                f"{source.path} changed while the environment was being built: run again"
            )
        target = base / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if entry.executable:
            os.chmod(target, 0o755)
