"""Which files of a project are deployed: fixed exclusions plus gitignore-style rules.

Rules come from the root ``.gitignore``, nested ``.gitignore`` files (relative to their own
folder, as git reads them) and the root ``.dagshipignore``, which is read last so it can
re-include (``!pattern``) what git ignores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

# Never deployed, whatever the rules say: VCS data, bytecode and local secrets.
ALWAYS_EXCLUDED_NAMES = frozenset({".git", "__pycache__", ".env"})
ALWAYS_EXCLUDED_SUFFIXES = (".pyc",)
GITIGNORE = ".gitignore"
DAGSHIPIGNORE = ".dagshipignore"


def always_excluded(name: str) -> bool:
    return name in ALWAYS_EXCLUDED_NAMES or name.endswith(ALWAYS_EXCLUDED_SUFFIXES)


def read_spec(path: Path) -> GitIgnoreSpec | None:
    """The rules of one ignore file, or None if it does not exist or has no rules."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    spec = GitIgnoreSpec.from_lines(text.splitlines())
    return spec if spec.patterns else None


@dataclass(frozen=True)
class Rules:
    """The ignore files that apply to one folder, outermost first.

    Each item is ``(base, spec)``: ``base`` is the folder of the ignore file relative to the
    project root (``""`` for the root, else ending in ``/``).
    """

    specs: tuple[tuple[str, GitIgnoreSpec], ...] = ()
    # The root .dagshipignore is kept apart so it is always applied last.
    override: GitIgnoreSpec | None = None

    def nested(self, folder_rel: str, spec: GitIgnoreSpec | None) -> Rules:
        """The rules for a subfolder that has ``spec`` as its own .gitignore."""
        if spec is None:
            return self
        return Rules((*self.specs, (folder_rel + "/", spec)), self.override)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (relative to the project root) is excluded; the last match wins."""
        candidate = rel + "/" if is_dir else rel
        decision: bool | None = None
        for base, spec in self.specs:
            if base and not candidate.startswith(base):
                continue
            result = spec.check_file(candidate[len(base) :])
            if result.include is not None:
                decision = result.include
        if self.override is not None:
            result = self.override.check_file(candidate)
            if result.include is not None:
                decision = result.include
        return bool(decision)


def root_rules(root: Path) -> Rules:
    gitignore = read_spec(root / GITIGNORE)
    specs = (("", gitignore),) if gitignore is not None else ()
    return Rules(specs, read_spec(root / DAGSHIPIGNORE))
