"""packages.txt checked on this (Debian) host with the real dpkg-query: installed packages pass,
missing ones fail the apply listing each, and with install=True the real apt-get installs them
(run as root only: the package is a tiny one, removed again afterwards)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagship.agent.errors import AgentError
from dagship.agent.os_packages import (
    OsPackage,
    apt_get_commands,
    check_os_packages,
    read_os_packages,
)

# A package Debian has and this host lacks; `sl` is a 20 kB toy with no dependencies.
ABSENT = "sl"
MISSING_FOREVER = "dagship-no-such-package"

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-query") is None, reason="dagship checks Debian packages only"
)


def installed(name: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}", name], capture_output=True, text=True
    )
    return done.stdout == "installed"


def with_packages(tmp_path: Path, text: str) -> Path:
    (tmp_path / "packages.txt").write_text(text)
    return tmp_path


def test_without_packages_txt_there_is_nothing_to_check(tmp_path: Path) -> None:
    assert check_os_packages(tmp_path, install=False) == []


def test_packages_that_are_installed_pass(tmp_path: Path) -> None:
    project = with_packages(tmp_path, "# tools\ncoreutils\nbash coreutils  # twice\n")
    assert check_os_packages(project, install=False) == []


def test_missing_packages_fail_listing_each_and_the_option(tmp_path: Path) -> None:
    if installed(ABSENT):
        pytest.skip(f"{ABSENT} is installed on this host")
    project = with_packages(tmp_path, f"coreutils\n{ABSENT}\n{MISSING_FOREVER}\n")
    with pytest.raises(AgentError) as caught:
        check_os_packages(project, install=False)
    message = str(caught.value)
    assert f"missing on this host: {ABSENT}, {MISSING_FOREVER}." in message
    assert "--install-os-packages" in message and "coreutils" not in message


def test_a_pinned_version_other_than_the_installed_one_is_missing(tmp_path: Path) -> None:
    project = with_packages(tmp_path, "coreutils=0.0-not-this-one\n")
    with pytest.raises(AgentError) as caught:
        check_os_packages(project, install=False)
    assert "coreutils=0.0-not-this-one" in str(caught.value)


def test_a_line_that_is_not_a_package_name_is_refused(tmp_path: Path) -> None:
    project = with_packages(tmp_path, "curl\nNot_A/Package\n")
    with pytest.raises(AgentError) as caught:
        read_os_packages(project)
    assert "packages.txt line 2: 'Not_A/Package' is not a Debian package name" in str(caught.value)


def test_the_install_commands() -> None:
    packages = [OsPackage("libpq-dev", "libpq-dev", None), OsPackage("sl=5.02-1", "sl", "5.02-1")]
    assert apt_get_commands(packages) == [
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libpq-dev", "sl=5.02-1"],
    ]


@pytest.fixture
def absent_package() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("installing OS packages needs root and apt-get")
    if installed(ABSENT):
        pytest.skip(f"{ABSENT} is installed on this host already")
    try:
        yield ABSENT
    finally:
        subprocess.run(["apt-get", "purge", "-y", "-qq", ABSENT], capture_output=True)


def test_with_install_the_missing_packages_are_installed(
    tmp_path: Path, absent_package: str
) -> None:
    project = with_packages(tmp_path, f"coreutils\n{absent_package}\n")
    assert check_os_packages(project, install=True) == [absent_package]
    assert installed(absent_package)
    assert check_os_packages(project, install=False) == []


def test_a_package_apt_get_does_not_know_fails_with_its_message(
    tmp_path: Path, absent_package: str
) -> None:
    project = with_packages(tmp_path, f"{absent_package}\n{MISSING_FOREVER}\n")
    with pytest.raises(AgentError) as caught:
        check_os_packages(project, install=True)
    message = str(caught.value)
    assert "could not be installed" in message and MISSING_FOREVER in message
    assert "Unable to locate package" in message
    assert not installed(absent_package)  # apt-get installs all or nothing
