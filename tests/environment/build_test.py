"""The deployment's environment: Airflow version from dagship.yaml or the Dockerfile, and real
uv environments that are reused while nothing changed and rebuilt when requirements.txt does."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

import pytest

from dagship.environment.build import (
    AirflowImage,
    ensure_environment,
    image_airflow,
    project_airflow_version,
    remove_unused_environments,
)
from dagship.environment.errors import EnvironmentBuildError
from tests.validate.conftest import ParseCli, by_path, write_files


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("apache/airflow:3.3.2", AirflowImage("3.3.2")),
        ("apache/airflow:3.3.2-python3.12", AirflowImage("3.3.2", "3.12")),
        ("docker.io/apache/airflow:slim-3.1.0-python3.11", AirflowImage("3.1.0", "3.11")),
        ("quay.io/astronomer/astro-runtime:3.0-2", AirflowImage("3.0")),
        ("astrocrpublic.azurecr.io/runtime:3.1-12", AirflowImage("3.1")),
        ("astrocrpublic.azurecr.io/runtime:3.1-12-python-3.12-base", AirflowImage("3.1", "3.12")),
    ],
)
def test_known_images_map_to_their_airflow(image: str, expected: AirflowImage) -> None:
    assert image_airflow(image) == expected


@pytest.mark.parametrize(
    ("image", "needles"),
    [
        ("ubuntu:24.04", ["cannot tell which Airflow version", "airflow_version", "dagship.yaml"]),
        ("apache/airflow:latest", ["cannot tell which Airflow version", "airflow_version"]),
        ("apache/airflow:2.10.5", ["Airflow 2.10.5", "Airflow 3", "airflow_version"]),
        ("quay.io/astronomer/astro-runtime:12.1.0", ["Airflow 2", "Runtime 3", "airflow_version"]),
        ("astrocrpublic.azurecr.io/runtime:9.9-1", ["cannot tell which Airflow version"]),
    ],
)
def test_unknown_or_airflow2_images_ask_for_airflow_version(image: str, needles: list[str]) -> None:
    with pytest.raises(EnvironmentBuildError) as caught:
        image_airflow(image)
    for needle in needles:
        assert needle in str(caught.value)


def test_dagship_yaml_wins_over_the_dockerfile(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "Dockerfile": "FROM python:3.12 AS build\nFROM apache/airflow:3.2.0-python3.12\n",
        },
    )
    assert project_airflow_version(tmp_path) == "3.2.0"  # the final stage's image
    write_files(tmp_path, {"dagship.yaml": "airflow_version: 3.3.2\n"})
    assert project_airflow_version(tmp_path) == "3.3.2"


def test_no_dockerfile_and_no_version_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentBuildError) as caught:
        project_airflow_version(tmp_path)
    assert "add `airflow_version: 3.3.2` (your deployment's version) to dagship.yaml" in str(
        caught.value
    )


COWSAY_DAG = """
    import cowsay
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("moo", schedule=None):
        EmptyOperator(task_id=cowsay.get_output_string("cow", "hi").isascii() and "say" or "x")
"""


def test_environment_is_built_reused_and_rebuilt_when_requirements_change(
    tmp_path: Path, parse_cli: ParseCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache of its own: the session's may already hold these environments (built by an
    # earlier module on this worker), and this test watches them being built.
    cache = tmp_path / "cache"
    project = write_files(
        tmp_path / "project",
        {
            "dagship.yaml": "airflow_version: 3.3.2\n",
            "requirements.txt": "# the project's Python packages\n",
            "dags/moo.py": COWSAY_DAG,
        },
    )
    # Built with uv: Airflow 3.3.2 without the package the DAG needs.
    first = parse_cli(project, "--json", cache_dir=cache)
    assert first.code == 1, first.err
    report = first.json()
    assert report["environment_reused"] is False
    assert report["airflow_version"] == "3.3.2"
    assert "/envs/" in report["python"] and str(cache) in report["python"]
    error = by_path(report)["dags/moo.py"]["errors"][0]
    assert error["kind"] == "import" and "No module named 'cowsay'" in error["message"]

    # Reused: nothing changed, and finding it adds well under 2 s.
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(cache))
    marker = Path(report["python"]).parent.parent / ".dagship-environment.json"
    os.utime(marker, (0, 0))
    started = time.perf_counter()
    environment = ensure_environment(project)
    assert time.perf_counter() - started < 2.0
    assert environment.reused is True
    assert str(environment.python) == report["python"]
    assert marker.stat().st_mtime > time.time() - 60  # marked as used

    # --json keeps uv's progress out of the output; people see it (below).
    assert "uv: " not in first.err, first.err

    # requirements.txt changed: a new environment, with the package, uv's progress shown.
    (project / "requirements.txt").write_text("cowsay\n")
    rebuilt = parse_cli(project, cache_dir=cache).ok()
    assert "Building the environment" in rebuilt.err, rebuilt.err
    for step in ("uv: Resolved ", "uv: Installed ", "uv: Bytecode compiled "):
        assert step in rebuilt.err, rebuilt.err
    assert " + cowsay" not in rebuilt.err  # the package list is not progress
    assert "moo" in rebuilt.out
    again = parse_cli(project, "--json", cache_dir=cache).ok().json()
    assert again["environment_reused"] is True and again["cached_files"] == 1
    assert again["python"] != report["python"]
    assert by_path(again)["dags/moo.py"]["dags"] == [{"dag_id": "moo", "tasks": 1}]


def test_a_half_built_environment_is_never_used(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSHIP_CACHE_DIR", str(shared_cache))
    # The same inputs as the environment above: reused from the session's cache when it ran.
    project = write_files(
        tmp_path / "project",
        {"dagship.yaml": "airflow_version: 3.3.2\n", "requirements.txt": "cowsay\n"},
    )
    built = ensure_environment(project)
    assert built.location is not None
    (built.location / ".dagship-environment.json").unlink()  # as if the build had stopped
    rebuilt = ensure_environment(project)
    assert rebuilt.reused is False and rebuilt.location == built.location
    assert rebuilt.airflow_version == "3.3.2"
    assert ensure_environment(project).reused is True


def test_dependency_conflict_is_reported_with_uvs_explanation(
    tmp_path: Path, parse_cli: ParseCli
) -> None:
    # A cache of its own: the session's may hold an environment another module's test
    # left half-built on purpose (an agent killed during a build).
    cache = tmp_path / "cache"
    project = write_files(
        tmp_path / "project",
        {
            "dagship.yaml": "airflow_version: 3.3.2\n",
            "requirements.txt": "apache-airflow==2.10.5\n",
            "dags/a.py": "from airflow.sdk import DAG\n",
        },
    )
    result = parse_cli(project, cache_dir=cache)
    result.failed(
        "dependency conflict",
        "No solution found when resolving dependencies",
        "apache-airflow==2.10.5",
        "requirements.txt",
    )
    envs: Any = list((cache / "envs").glob("*/bin/python"))
    assert all(p.parent.parent.joinpath(".dagship-environment.json").exists() for p in envs)


def test_environments_unused_for_30_days_are_removed_after_a_build(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    month_ago = time.time() - 31 * 86400

    def environment(name: str, *, finished: bool, used: float | None = None) -> Path:
        location = envs / name
        (location / "bin").mkdir(parents=True)
        if finished:
            (location / ".dagship-environment.json").write_text('{"airflow_version": "3.3.2"}')
        if used is not None:
            for path in (location / ".dagship-environment.json", location):
                if path.exists():
                    os.utime(path, (used, used))
        return location

    old = environment("old", finished=True, used=month_ago)
    recent = environment("recent", finished=True)
    stopped = environment("stopped", finished=False, used=month_ago)
    # Its marker was used yesterday although its folder is old: it stays.
    kept_by_marker = environment("used-yesterday", finished=True, used=month_ago)
    os.utime(kept_by_marker / ".dagship-environment.json")
    just_built = environment("just-built", finished=True, used=month_ago)
    building = environment("building", finished=False, used=month_ago)

    with (envs / "building.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a build in progress
        removed = remove_unused_environments(envs, keep=just_built)

    assert removed == [old, stopped]
    assert sorted(p.name for p in envs.iterdir() if p.is_dir()) == [
        "building",
        "just-built",
        "recent",
        "used-yesterday",
    ]
    assert building.exists() and recent.exists()
