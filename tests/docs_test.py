"""The docs refer only to what exists: every relative link in README.md and docs/*.md resolves
(file and heading), and every repository path they name in backticks is there."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from dagship.project.scaffold import EXAMPLE_FILES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGE = ROOT / "src" / "dagship"

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
CODE_SPAN = re.compile(r"`[^`\n]*`")
# Paths of this repository: they start with one of its folders.
REPO_FOLDERS = ("src/", "docs/", "scripts/", "bench/", "tests/", ".ci/")
# Paths inside the package, as docs/architecture.md and the other docs name them.
PACKAGE_FOLDERS = {p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"}


def prose(doc: Path) -> str:
    """The text of a doc without its fenced code blocks (commands, examples, output)."""
    return FENCE.sub("", doc.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to dashes."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


@cache
def anchors(doc: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(doc), re.M):
        base, n = slug(heading), 0
        while (candidate := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in LINK.findall(CODE_SPAN.sub("", prose(doc))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}:\n" + "\n".join(broken)


@cache
def tracked() -> tuple[str, ...]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return tuple(listed + untracked)


def exists_in_repository(path: str) -> bool:
    name = path.rstrip("/")
    return any(f == name or f.startswith(name + "/") for f in tracked())


def exists_in_package(path: str) -> bool:
    """``flows/deploy.py``, ``services/deploys.py``, ``server/store/``: a path under
    src/dagship, named from any of its packages down."""
    name = "/" + path.rstrip("/")
    prefix = "src/dagship"
    return any(
        f.startswith(prefix) and (f.endswith(name) or (name + "/") in f[len(prefix) :] + "/")
        for f in tracked()
    )


def exists_in_airflow(path: str) -> bool:
    """``airflow/dag_processing/manager.py``: a file of Apache Airflow itself."""
    try:
        import airflow
    except ImportError:
        return True  # cannot tell here
    return (Path(airflow.__file__).parent.parent / path).exists()


def named_paths(doc: Path) -> list[str]:
    """Backticked names that are paths of this repository or of the package; the files of a
    user's project (`dags/etl.py`, `tests/dags/test_dag_example.py`) are not checked."""
    names = []
    for token in CODE.findall(prose(doc)):
        if any(c in token for c in "$<>{}*[]…~=:") or token in EXAMPLE_FILES:
            continue
        first = token.split("/", 1)[0]
        if token.startswith(REPO_FOLDERS) or (
            "/" in token and first in PACKAGE_FOLDERS and token.endswith((".py", "/"))
        ):
            names.append(token)
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.relative_to(ROOT).as_posix())
def test_every_repository_path_named_exists(doc: Path) -> None:
    missing = [
        name
        for name in named_paths(doc)
        if not (
            exists_in_repository(name)
            or exists_in_package(name)
            or (name.startswith("airflow/") and exists_in_airflow(name))
        )
    ]
    assert not missing, f"{doc.relative_to(ROOT)} names what does not exist: {missing}"


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    assert slug("Waiting for Airflow: `deploy --wait`") == "waiting-for-airflow-deploy---wait"
    assert slug("`dagship migrate-check`: moving from Airflow 2") == (
        "dagship-migrate-check-moving-from-airflow-2"
    )
    doc = tmp_path / "x.md"
    doc.write_text("See `flows/deploy.py`, `flows/nothing.py`, `dags/etl.py`, `src/x`.\n")
    names = named_paths(doc)
    assert names == ["flows/deploy.py", "flows/nothing.py", "src/x"]
    assert [exists_in_package(n) or exists_in_repository(n) for n in names] == [
        True,
        False,
        False,
    ]


def test_files_in_the_home_are_named_by_dagship_home() -> None:
    # `~/.dagship` is only DAGSHIP_HOME's default: a file in the home is `$DAGSHIP_HOME/...`,
    # so what the docs and the CLI say holds for a user who set DAGSHIP_HOME.
    texts = [*DOCS, *sorted((PACKAGE / "cli").glob("*.py")), *sorted(PACKAGE.rglob("templates/*"))]
    hard_coded = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in texts
        if path.is_file() and path.suffix != ".pyc"
        for line in path.read_text(encoding="utf-8").splitlines()
        if "~/.dagship/" in line
    ]
    assert not hard_coded, "\n".join(hard_coded)
