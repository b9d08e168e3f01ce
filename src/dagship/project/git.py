"""Git metadata of the commit a project folder is at, recorded with each deploy."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# CI systems check out a detached HEAD; these name the branch being built.
_CI_BRANCH_VARS = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME")
_SEP = "\x1f"


@dataclass(frozen=True)
class GitInfo:
    sha: str | None = None
    branch: str | None = None
    author: str | None = None
    message: str | None = None


def git_info(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> GitInfo:
    """The HEAD commit of the repository holding ``path``; all None outside git."""
    env = os.environ if env is None else env
    log = _git(path, "log", "-1", f"--format=%H{_SEP}%an{_SEP}%ae{_SEP}%B")
    if log is None:
        return GitInfo()
    sha, name, email, message = [*log.split(_SEP, 3), "", "", ""][:4]
    branch = _git(path, "symbolic-ref", "--quiet", "--short", "HEAD")
    if not branch:
        branch = next((env[var] for var in _CI_BRANCH_VARS if env.get(var)), None)
    author = f"{name} <{email}>" if name or email else None
    return GitInfo(
        sha=sha.strip() or None,
        branch=branch.strip() if branch else None,
        author=author,
        message=message.strip() or None,
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
