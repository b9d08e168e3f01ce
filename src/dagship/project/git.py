"""The git repository a project folder is in: the commit checked out, its branch, and
whether the project's files differ from it.

Every git command dagship runs is here. What a CI system says about a build is read by
``dagship.integrations.ci``; ``dagship.integrations.source`` combines the two.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SEP = "\x1f"


@dataclass(frozen=True)
class GitInfo:
    """The HEAD commit; ``branch`` is None for a detached HEAD (as CI systems check out).

    ``dirty`` is True when files under the project folder differ from that commit (changed,
    staged, deleted, or new and not ignored by git), so what is deployed is not the commit;
    None outside git.
    """

    sha: str | None = None
    branch: str | None = None
    author: str | None = None
    message: str | None = None
    dirty: bool | None = None


def git_info(path: str | os.PathLike[str]) -> GitInfo:
    """The HEAD commit of the repository holding ``path``; all None outside git."""
    log = _git(path, "log", "-1", f"--format=%H{_SEP}%an{_SEP}%ae{_SEP}%B")
    if log is None:
        return GitInfo()
    sha, name, email, message = [*log.split(_SEP, 3), "", "", ""][:4]
    branch = _git(path, "symbolic-ref", "--quiet", "--short", "HEAD")
    author = f"{name} <{email}>" if name or email else None
    # Only the project folder counts: other folders of the repository are not deployed.
    status = _git(path, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return GitInfo(
        sha=sha.strip() or None,
        branch=branch or None,
        author=author,
        message=message.strip() or None,
        dirty=None if status is None else bool(status),
    )


def _git(path: str | os.PathLike[str], *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(path)), *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
