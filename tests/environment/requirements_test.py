"""requirements.txt as pip reads it: includes, local packages, index options and hashes made into
what uv installs, the environment's key covering all of it, and clear refusals naming the file and
line. The last tests build real uv environments (shared cache, Airflow from the warm uv cache)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagship.environment.build import ensure_environment
from dagship.environment.errors import EnvironmentBuildError
from dagship.environment.requirements import Requirements, read_requirements, uv_settings
from tests.validate.conftest import write_files

MYLIB = {
    "packages/mylib/pyproject.toml": """
        [project]
        name = "mylib"
        version = "0.1"
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
    """,
    "packages/mylib/mylib/__init__.py": "VALUE = 1\n",
}


def read(project: Path) -> Requirements:
    requirements = read_requirements(project)
    assert requirements is not None
    return requirements


def rendered(project: Path, tmp_path: Path) -> str:
    return read(project).write_for_uv(tmp_path / "for-uv").read_text()


def test_without_requirements_txt_there_is_nothing_to_read(tmp_path: Path) -> None:
    assert read_requirements(tmp_path) is None


def test_plain_lines_reach_uv_unchanged_line_for_line(tmp_path: Path) -> None:
    text = (
        "# pinned\n"
        "-i https://pypi.org/simple\n"
        "--extra-index-url=https://example.com/simple\n"
        "cowsay==6.1 \\\n"
        "    --hash=sha256:274b1e6fc1b966d53976333eb90ac94cb07a450a700b455af9fbdf882244b30a\n"
        'six; python_version >= "3"  # a comment\n'
        "--only-binary :all:\n"
    )
    project = write_files(tmp_path / "p", {"requirements.txt": text})
    requirements = read(project)
    assert requirements.rewrites == () and requirements.uv_options == ()
    assert requirements.key_data() == {"files": {"requirements.txt": text}, "sources": {}}
    assert rendered(project, tmp_path) == text


def test_pre_and_trusted_host_become_uvs_options(tmp_path: Path) -> None:
    text = "--pre\n--trusted-host example.com\nsix\n"
    project = write_files(tmp_path / "p", {"requirements.txt": text})
    requirements = read(project)
    assert requirements.uv_options == (
        "--prerelease",
        "allow",
        "--allow-insecure-host",
        "example.com",
    )
    assert rendered(project, tmp_path).splitlines() == ["", "", "six"]


def test_includes_are_read_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {
            "requirements.txt": "-r requirements/base.txt\n-c constraints.txt\n",
            "requirements/base.txt": "--find-links ../wheels\n-r ./extra.txt\n",
            "requirements/extra.txt": "cowsay\n",
            "constraints.txt": "cowsay==6.1\n",
            "wheels/.keep": "",
        },
    )
    requirements = read(project)
    assert set(requirements.texts) == {
        "requirements.txt",
        "requirements/base.txt",
        "requirements/extra.txt",
        "constraints.txt",
    }
    assert set(requirements.sources) == {"wheels"}
    top = requirements.write_for_uv(tmp_path / "for-uv")
    base = (top.parent / "requirements" / "base.txt").read_text().splitlines()
    assert base == [f"--find-links {tmp_path / 'for-uv' / 'project' / 'wheels'}", "-r ./extra.txt"]
    assert (top.parent / "requirements" / "extra.txt").read_text() == "cowsay\n"


def test_local_packages_are_copied_as_deployed_and_installed_without_e(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {
            **MYLIB,
            "requirements.txt": "-e ./packages/mylib[extra]\n"
            "other @ file:dist/other-1.0-py3-none-any.whl\n",
            "packages/mylib/.gitignore": "build/\n",
            "packages/mylib/build/lib/mylib/__init__.py": "VALUE = 0  # stale\n",
            "dist/other-1.0-py3-none-any.whl": "not really a wheel",
        },
    )
    requirements = read(project)
    copies = tmp_path / "for-uv" / "project"
    assert rendered(project, tmp_path).splitlines() == [
        f"{copies / 'packages/mylib'}[extra]",
        f"other @ {(copies / 'dist/other-1.0-py3-none-any.whl').as_uri()}",
    ]
    copied = sorted(str(p.relative_to(copies)) for p in copies.rglob("*") if p.is_file())
    assert copied == [
        "dist/other-1.0-py3-none-any.whl",
        "packages/mylib/.gitignore",
        "packages/mylib/mylib/__init__.py",
        "packages/mylib/pyproject.toml",
    ]  # not the ignored build/ folder
    assert set(requirements.key_data()["sources"]) == {  # type: ignore[call-overload]
        "packages/mylib",
        "dist/other-1.0-py3-none-any.whl",
    }


def test_the_key_covers_included_files_and_local_packages(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {**MYLIB, "requirements.txt": "-r more.txt\n./packages/mylib\n", "more.txt": "six\n"},
    )
    first = read(project).key_data()
    (project / "packages/mylib/__pycache__").mkdir()
    (project / "packages/mylib/__pycache__/x.pyc").write_bytes(b"\0")
    assert read(project).key_data() == first  # not deployed, not part of the key
    (project / "packages/mylib/mylib/__init__.py").write_text("VALUE = 2\n")
    second = read(project).key_data()
    assert second["sources"] != first["sources"]
    (project / "more.txt").write_text("six==1.16.0\n")
    assert read(project).key_data()["files"] != second["files"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("six\n--prefer-binary\n", ["requirements.txt line 2", "--prefer-binary", "pin"]),
        ("--require-hashes\n", ["line 1", "apache-airflow and pytest", "still checked"]),
        ("--use-feature truststore\n", ["line 1", "UV_NATIVE_TLS"]),
        ("six --config-settings a=b\n", ["line 1", "--config-settings", "wheel"]),
        ("six \\\n  --global-option x\n", ["line 1", "--global-option"]),
        ("--no-build-isolation\n", ["line 1", "not an option of a requirements file"]),
        ("six\n# ours\n-e ../elsewhere\n", ["line 3", "outside the project", "packages/"]),
        ("/opt/pkg\n", ["line 1", "absolute path", "relative to the project"]),
        ("pkg @ file:///opt/pkg\n", ["line 1", "absolute path"]),
        ("--find-links /opt/wheels\n", ["line 1", "absolute path"]),
        ("-r https://example.com/r.txt\n", ["line 1", "network", "save it in the project"]),
        ("-r missing.txt\n", ["line 1", "missing.txt is not part of the deployed project"]),
        ("./nothing-here\n", ["line 1", "nothing-here is not part of the deployed project"]),
        ("./dags/lib\n", ["line 1", "dags/", "DAG bundle"]),
        ("-r requirements.txt\n", ["line 1", "includes itself"]),
        ("-i\n", ["line 1", "`-i` needs a value"]),
    ],
)
def test_what_uv_cannot_take_is_refused_naming_the_line(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    project = write_files(tmp_path / "p", {"requirements.txt": text, "dags/lib/x.py": ""})
    with pytest.raises(EnvironmentBuildError) as caught:
        read_requirements(project)
    for needle in needles:
        assert needle in str(caught.value)


def test_an_ignored_include_is_refused(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {"requirements.txt": "-r dev.txt\n", "dev.txt": "six\n", ".dagshipignore": "dev.txt\n"},
    )
    with pytest.raises(EnvironmentBuildError) as caught:
        read_requirements(project)
    assert "requirements.txt line 1: dev.txt is not part of the deployed project" in str(
        caught.value
    )


def staging_copies(cache: Path) -> set[Path]:
    """The requirements copies a build stages next to its environment (a build killed
    half-way by another test sharing the cache may have left some)."""
    return set(cache.glob("envs/*.requirements"))


def import_value(python: Path) -> str:
    code = "import mylib, cowsay; print(mylib.VALUE)"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_changed_local_package_builds_a_new_environment_with_its_new_content(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(shared_cache))
    before = staging_copies(shared_cache)
    project = write_files(
        tmp_path / "project",
        {
            **MYLIB,
            "dagship.yaml": "airflow_version: 3.3.2\n",
            "requirements.txt": "-r requirements/base.txt\n-e ./packages/mylib\n",
            "requirements/base.txt": "cowsay\n",
        },
    )
    first = ensure_environment(project)
    assert first.reused is False and import_value(first.python) == "1"
    # uv caches the wheel it built from a folder by the folder's path and pyproject.toml: only
    # a copy named by the content keeps the old build from being installed again.
    (project / "packages/mylib/mylib/__init__.py").write_text("VALUE = 2\n")
    second = ensure_environment(project)
    assert second.reused is False and second.key != first.key
    assert import_value(second.python) == "2"
    assert import_value(first.python) == "1"  # the first environment is untouched
    assert staging_copies(shared_cache) <= before  # the copies are gone
    assert ensure_environment(project).reused is True


def test_a_wrong_hash_fails_the_build_with_uvs_message(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(shared_cache))
    before = staging_copies(shared_cache)
    wrong = "0" * 64
    project = write_files(
        tmp_path / "project",
        {
            "dagship.yaml": "airflow_version: 3.3.2\n",
            "requirements.txt": f"cowsay==6.1 --hash=sha256:{wrong}\n",
        },
    )
    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(project)
    message = str(caught.value)
    assert "could not install apache-airflow 3.3.2 and requirements.txt" in message
    assert "Hash mismatch for `cowsay==6.1`" in message and wrong in message
    assert staging_copies(shared_cache) <= before


def test_uvs_index_settings_are_part_of_the_key() -> None:
    environ = {"UV_INDEX_URL": "https://mirror/simple", "UV_CACHE_DIR": "/c", "PATH": "/bin"}
    assert uv_settings(environ) == {"UV_INDEX_URL": "https://mirror/simple"}
