from __future__ import annotations

from pathlib import Path

import pytest

from dagship.project.config import ConfigError, ProjectConfig, load_config
from dagship.project.scaffold import AIRFLOW_VERSION, DEFAULT_SERVER_URL, scaffold_project


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "dagship.yaml").write_text(text)
    return tmp_path


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path) == ProjectConfig()


def test_scaffolded_file_reads_back(tmp_path: Path) -> None:
    scaffold_project(tmp_path)
    config = load_config(tmp_path)
    assert config.url == DEFAULT_SERVER_URL
    assert config.airflow_version == AIRFLOW_VERSION
    assert config.deployments == {"main": "local"}


def test_branch_map_exact_before_pattern(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "deployments:\n  'release/*': staging\n  release/2.0: prod\n  develop: dev\n",
        )
    )
    assert config.deployment_for("release/2.0") == "prod"
    assert config.deployment_for("release/1.9") == "staging"
    assert config.deployment_for("develop") == "dev"
    assert config.deployment_for("feature/x") is None


def test_numeric_airflow_version_is_text(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "airflow_version: 3.1\n")).airflow_version == "3.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("url: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("deploymnets:\n  main: prod\n", "unknown setting deploymnets"),
        ("deployments:\n  main:\n", "deployments.main must name a deployment"),
        ("deployments: prod\n", "deployments must be a mapping"),
        ("url: {a: 1}\n", "url must be a string"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))
