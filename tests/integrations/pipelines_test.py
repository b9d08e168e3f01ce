"""`dagship ci init`: one ready pipeline per CI system, valid, and never written over."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagship.integrations.pipelines import PIPELINES, render
from tests.helpers import Cli

PROVIDERS = list(PIPELINES)
REPO_ROOT = Path(__file__).resolve().parents[2]


def cli() -> Cli:
    return Cli(None, None)


def yaml_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in yaml_strings(k) + yaml_strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in yaml_strings(item)]
    return [node] if isinstance(node, str) else []


def jenkins_structure(text: str) -> None:
    """What a declarative Jenkinsfile needs: balanced braces and parentheses outside strings
    and comments, `pipeline {`, an agent, and stages each with steps."""
    code = re.sub(r"//[^\n]*", "", text)
    code = re.sub(r"'[^'\n]*'|\"[^\"\n]*\"", "''", code)
    for opening, closing in ("{}", "()", "[]"):
        depth = 0
        for char in code:
            depth += char == opening
            depth -= char == closing
            assert depth >= 0, f"unbalanced {closing}"
        assert depth == 0, f"unbalanced {opening}"
    assert re.match(r"\s*pipeline\s*\{", code), "a declarative pipeline starts with `pipeline {`"
    assert re.search(r"\bagent\b", code)
    stages = re.findall(r"stage\('([^']+)'\)\s*\{", text)
    assert stages and len(stages) == len(re.findall(r"\bsteps\s*\{", code))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_pipeline_parses(provider: str) -> None:
    text = render(provider, "dev")
    assert "@PREVIEW_FROM@" not in text
    assert "DAGSHIP_URL" in text and "DAGSHIP_API_TOKEN" in text
    assert "dagship deploy . --branch auto --wait" in text
    assert "dagship parse ." in text and "dagship test ." in text
    if provider == "jenkins":
        jenkins_structure(text)
    else:
        data = yaml.safe_load(text)
        assert isinstance(data, dict) and data
        commands = [line for s in yaml_strings(data) for line in s.splitlines()]
        assert any("dagship deploy . --branch auto --wait" in line for line in commands)
    if PIPELINES[provider].previews:
        assert "dagship preview create --from dev --name" in text
        assert "dagship preview deploy --name" in text
    else:
        assert "preview" not in text.replace("no previews", "")


def test_structures_each_system_reads() -> None:
    github = yaml.safe_load(render("github"))
    # PyYAML reads the `on:` key as True (YAML 1.1); GitHub reads it as "on".
    triggers = github[True]
    assert set(triggers) == {"push", "pull_request"}
    assert "closed" in triggers["pull_request"]["types"]
    assert set(github["jobs"]) == {"check", "preview-delete", "deploy"}
    gitlab = yaml.safe_load(render("gitlab"))
    assert gitlab["preview"]["environment"]["on_stop"] == "preview-delete"
    assert gitlab["preview-delete"]["environment"]["action"] == "stop"
    assert {"parse", "test", "preview", "deploy"} <= set(gitlab)
    bitbucket = yaml.safe_load(render("bitbucket"))
    assert set(bitbucket["pipelines"]) == {"pull-requests", "branches"}
    azure = yaml.safe_load(render("azure"))
    assert {"trigger", "pr", "steps"} <= set(azure)
    for step in azure["steps"]:
        if "dagship " in step.get("script", "") and "pip install" not in step["script"]:
            assert step["env"]["DAGSHIP_API_TOKEN"] == "$(DAGSHIP_API_TOKEN)"
    circleci = yaml.safe_load(render("circleci"))
    assert circleci["version"] == 2.1 and set(circleci["jobs"]) == {"check", "deploy"}
    codebuild = yaml.safe_load(render("codebuild"))
    assert codebuild["version"] == 0.2 and "build" in codebuild["phases"]
    assert set(codebuild["env"]["secrets-manager"]) == {"DAGSHIP_URL", "DAGSHIP_API_TOKEN"}
    cloudbuild = yaml.safe_load(render("cloudbuild"))
    assert cloudbuild["steps"][0]["secretEnv"] == ["DAGSHIP_URL", "DAGSHIP_API_TOKEN"]
    assert cloudbuild["options"]["substitutionOption"] == "ALLOW_LOOSE"
    drone = yaml.safe_load(render("drone"))
    assert drone["kind"] == "pipeline"
    assert [s["when"]["event"] for s in drone["steps"]] == [["pull_request"], ["push"]]


def test_init_writes_each_file_where_its_system_reads_it(tmp_path: Path) -> None:
    for provider, pipeline in PIPELINES.items():
        body = cli()("ci", "init", provider, "--path", tmp_path, "--json").ok().json()
        target = tmp_path / pipeline.path
        assert body == {
            "provider": provider,
            "name": pipeline.name,
            "path": str(target),
            "replaced": False,
            "previews": pipeline.previews,
        }
        assert target.read_text() == render(provider, "dev")
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {pipeline.path for pipeline in PIPELINES.values()}


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / ".gitlab-ci.yml"
    target.write_text("# mine\n")
    cli()("ci", "init", "gitlab", "--path", tmp_path).failed("already exists", "--force")
    assert target.read_text() == "# mine\n"
    human = cli()("ci", "init", "gitlab", "--path", tmp_path, "--force").ok()
    assert "Replaced" in human.out and "GitLab CI" in human.out
    assert target.read_text() == render("gitlab")
    assert [p.name for p in tmp_path.iterdir()] == [".gitlab-ci.yml"], "no temporary files left"


def test_init_options_and_errors(tmp_path: Path) -> None:
    shown = cli()("ci", "init", "drone", "--path", tmp_path, "--print", "--preview-from", "qa")
    assert shown.ok().out == render("drone", "qa")
    assert "--from qa --name" in shown.out
    assert not list(tmp_path.iterdir()), "--print writes nothing"
    cli()("ci", "init", "travis", "--path", tmp_path).failed("unknown CI system", "github")
    cli()("ci", "init", "github", "--path", tmp_path / "missing").failed("is not a folder")
    cli()("ci", "init", "github", "--path", tmp_path, "--preview-from", "a b").failed(
        "--preview-from must be a deployment name"
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(shutil.which("uv") is None, reason="building the wheel needs uv")
def test_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        ["uv", "build", "--wheel", "-o", str(tmp_path), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for pipeline in PIPELINES.values():
        assert f"dagship/integrations/templates/{pipeline.template}" in names
