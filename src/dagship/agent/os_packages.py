"""``packages.txt``: the Debian packages a project needs on the host, as in an Astro project.

One package per line (or several separated by spaces), ``#`` comments; a package may be pinned
(``libpq-dev=15.8-0+deb12u1``) or name an architecture (``libc6:amd64``). The agent checks each
with ``dpkg-query``. A missing one is never skipped: with ``--install-os-packages`` the agent
installs the missing ones with ``apt-get`` (after ``apt-get update``), otherwise the apply fails
listing each missing package. dagship does not remove packages a later version no longer lists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dagship.agent.errors import AgentError

PACKAGES_FILE = "packages.txt"
INSTALL_OPTION = "--install-os-packages"
# Debian's rule for a package name, with an optional architecture and version.
_PACKAGE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9+.-]+)(?::(?P<arch>[a-z0-9-]+))?(?:=(?P<version>\S+))?$"
)


@dataclass(frozen=True)
class OsPackage:
    """A line's package: its name (with the architecture, if given) and pinned version."""

    written: str  # as packages.txt writes it
    name: str
    version: str | None


def read_os_packages(project: Path) -> list[OsPackage]:
    """The packages ``packages.txt`` lists, in order, once each; [] without the file."""
    path = project / PACKAGES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentError(f"cannot read {path}: {exc}") from exc
    packages: dict[str, OsPackage] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for word in line.split("#", 1)[0].split():
            match = _PACKAGE.match(word)
            if match is None:
                raise AgentError(
                    f"{path} line {number}: {word!r} is not a Debian package name (lower-case "
                    "letters, digits, + - and ., optionally :arch and =version): fix the line"
                )
            name = word.split("=", 1)[0]
            packages.setdefault(word, OsPackage(word, name, match["version"]))
    return list(packages.values())


def missing_os_packages(packages: list[OsPackage]) -> list[OsPackage]:
    """The packages not installed on this host (or installed at another version than pinned)."""
    if not packages:
        return []
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        raise AgentError(
            f"{PACKAGES_FILE} lists OS packages ({_names(packages)}), but this host has no "
            "dpkg-query: dagship checks and installs Debian packages only. Run the agent on a "
            "Debian or Ubuntu host, or remove the packages from packages.txt and install what "
            "they provide with this host's package manager"
        )
    names = sorted({package.name for package in packages})
    fields = "${Package}\t${db:Status-Status}\t${Version}\n"
    # Exit code 1 only says that some package is unknown: the output lists the others.
    done = subprocess.run(
        [dpkg_query, "-W", "-f", fields, *names], capture_output=True, text=True, check=False
    )
    installed: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, status, version = [*line.split("\t"), "", ""][:3]
        if status == "installed":
            installed[name] = version
    return [package for package in packages if not _satisfied(package, installed)]


def check_os_packages(project: Path, install: bool) -> list[str]:
    """Check the project's ``packages.txt`` on this host; the packages installed now (with
    ``install``). AgentError listing each missing package when they are missing and not
    installed, or when apt-get could not install them."""
    missing = missing_os_packages(read_os_packages(project))
    if not missing:
        return []
    if not install:
        raise AgentError(
            f"{PACKAGES_FILE} lists OS packages missing on this host: {_names(missing)}. "
            f"Install them (`apt-get install {' '.join(p.written for p in missing)}`), or run "
            f"the agent with {INSTALL_OPTION} to let it install them"
        )
    _apt_get_install(missing)
    still = missing_os_packages(missing)
    if still:
        raise AgentError(f"apt-get did not install {_names(still)}: install them by hand")
    return [package.written for package in missing]


def apt_get_commands(packages: list[OsPackage]) -> list[list[str]]:
    """The commands that install ``packages``: the package lists first, as an image build
    would, then the packages alone (no recommended extras)."""
    words = [package.written for package in packages]
    return [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *words],
    ]


def _apt_get_install(packages: list[OsPackage]) -> None:
    if shutil.which("apt-get") is None:
        raise AgentError(
            f"cannot install {_names(packages)}: this host has no apt-get; install them by hand"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in apt_get_commands(packages):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()
            raise AgentError(
                f"`{' '.join(command)}` failed, so {_names(packages)} could not be installed "
                "(apt-get needs root: run the agent as root, or install them yourself):\n"
                + "\n".join(output[-10:])
            )


def _satisfied(package: OsPackage, installed: dict[str, str]) -> bool:
    name = package.name.split(":", 1)[0]
    if name not in installed:
        return False
    return package.version is None or installed[name] == package.version


def _names(packages: list[OsPackage]) -> str:
    return ", ".join(package.written for package in packages)
