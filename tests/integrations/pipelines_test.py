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

from dagship.integrations.pipelines import INSTALL, PIPELINES, render
from dagship.project.config import load_config
from tests.helpers import Cli, write

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
    github = yaml.safe_load(render("github", "dev"))
    # PyYAML reads the `on:` key as True (YAML 1.1); GitHub reads it as "on".
    triggers = github[True]
    assert set(triggers) == {"push", "pull_request"}
    assert "closed" in triggers["pull_request"]["types"]
    assert set(github["jobs"]) == {"check", "preview-delete", "deploy"}
    gitlab = yaml.safe_load(render("gitlab", "dev"))
    assert gitlab["preview"]["environment"]["on_stop"] == "preview-delete"
    assert gitlab["preview-delete"]["environment"]["action"] == "stop"
    assert {"parse", "test", "preview", "deploy"} <= set(gitlab)
    bitbucket = yaml.safe_load(render("bitbucket", "dev"))
    assert set(bitbucket["pipelines"]) == {"pull-requests", "branches"}
    azure = yaml.safe_load(render("azure", "dev"))
    assert {"trigger", "pr", "steps"} <= set(azure)
    for step in azure["steps"]:
        if "dagship " in step.get("script", "") and "pip install" not in step["script"]:
            assert step["env"]["DAGSHIP_API_TOKEN"] == "$(DAGSHIP_API_TOKEN)"
    circleci = yaml.safe_load(render("circleci", "dev"))
    assert circleci["version"] == 2.1 and set(circleci["jobs"]) == {"check", "deploy"}
    codebuild = yaml.safe_load(render("codebuild", "dev"))
    assert codebuild["version"] == 0.2 and "build" in codebuild["phases"]
    assert set(codebuild["env"]["secrets-manager"]) == {"DAGSHIP_URL", "DAGSHIP_API_TOKEN"}
    cloudbuild = yaml.safe_load(render("cloudbuild", "dev"))
    assert cloudbuild["steps"][0]["secretEnv"] == ["DAGSHIP_URL", "DAGSHIP_API_TOKEN"]
    assert cloudbuild["options"]["substitutionOption"] == "ALLOW_LOOSE"
    drone = yaml.safe_load(render("drone", "dev"))
    assert drone["kind"] == "pipeline"
    assert [s["when"]["event"] for s in drone["steps"]] == [["pull_request"], ["push"]]


def project_root(tmp_path: Path, deployments: str = "  main: local\n") -> Path:
    """A repository root holding the project's dagship.yaml, as `dagship init` writes it."""
    write(tmp_path, "dagship.yaml", f"deployments:\n{deployments}")
    return tmp_path


def test_init_writes_each_file_where_its_system_reads_it(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    for provider, pipeline in PIPELINES.items():
        body = cli()("ci", "init", provider, "--path", root, "--json").ok().json()
        target = root / pipeline.path
        assert body == {
            "provider": provider,
            "name": pipeline.name,
            "path": str(target),
            "replaced": False,
            "previews": pipeline.previews,
            "preview_from": "local" if pipeline.previews else None,
        }
        assert target.read_text() == render(provider, "local")
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == {pipeline.path for pipeline in PIPELINES.values()} | {"dagship.yaml"}


def test_the_scaffolded_project_gets_a_pipeline_that_agrees_with_it(tmp_path: Path) -> None:
    # `dagship init` maps main to local: previews copy local, not a `dev` that does not exist.
    cli()("init", tmp_path).ok()
    done = cli()("ci", "init", "github", "--path", tmp_path).ok()
    assert "Pull request previews copy deployment local." in done.out
    text = (tmp_path / ".github/workflows/dagship.yml").read_text()
    assert "dagship preview create --from local --name" in text
    assert "--from dev" not in text
    mapped = load_config(tmp_path).deployments
    assert mapped == {"main": "local"}


def test_previews_copy_the_first_plain_branchs_deployment(tmp_path: Path) -> None:
    root = project_root(tmp_path, "  release/*: staging\n  develop: dev\n  main: prod\n")
    shown = cli()("ci", "init", "gitlab", "--path", root, "--print").ok().out
    assert "dagship preview create --from dev --name" in shown
    chosen = cli()("ci", "init", "gitlab", "--path", root, "--print", "--preview-from", "prod")
    assert "dagship preview create --from prod --name" in chosen.ok().out
    only_patterns = project_root(tmp_path / "p", "  release/*: staging\n")
    assert "--from staging --name" in render_for(only_patterns, "drone")


def render_for(root: Path, provider: str) -> str:
    return cli()("ci", "init", provider, "--path", root, "--print").ok().out


def test_init_refuses_what_disagrees_with_dagship_yaml(tmp_path: Path) -> None:
    cli()("ci", "init", "github", "--path", tmp_path).failed(
        "dagship.yaml does not exist", "--branch auto", "dagship init --force"
    )
    write(tmp_path, "dagship.yaml", "url: http://127.0.0.1:8787\n")
    cli()("ci", "init", "circleci", "--path", tmp_path).failed(
        "has no `deployments:` map", "deployments: {main: prod}"
    )
    root = project_root(tmp_path, "  main: local\n")
    cli()("ci", "init", "github", "--path", root, "--preview-from", "dev").failed(
        "--preview-from dev", "maps no branch to deployment dev", "main -> local", "one of local"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["dagship.yaml"], "nothing written"


def test_templates_install_dagship_as_the_readme_says() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"`{INSTALL}`" in readme
    for provider in PIPELINES:
        text = render(provider, "dev")
        installs = [ln for ln in text.splitlines() if "pip install" in ln]
        comments = [ln for ln in installs if ln.lstrip().startswith(("#", "//"))]
        commands = [ln for ln in installs if ln not in comments]
        assert commands and all(INSTALL in ln for ln in commands), provider
        assert any("as its README says" in ln and INSTALL in ln for ln in comments), provider
    # The GitHub action installs dagship from its own checkout, and uv with it.
    action = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
    (install,) = [s["run"] for s in action["runs"]["steps"] if "pip install" in s["run"]]
    assert install.split()[-2:] == ['"$GITHUB_ACTION_PATH"', "uv"]


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    root = project_root(tmp_path)
    target = root / ".gitlab-ci.yml"
    target.write_text("# mine\n")
    cli()("ci", "init", "gitlab", "--path", root).failed("already exists", "--force")
    assert target.read_text() == "# mine\n"
    human = cli()("ci", "init", "gitlab", "--path", root, "--force").ok()
    assert "Replaced" in human.out and "GitLab CI" in human.out
    assert target.read_text() == render("gitlab", "local")
    names = sorted(p.name for p in root.iterdir())
    assert names == [".gitlab-ci.yml", "dagship.yaml"], "no temporary files left"


def test_init_options_and_errors(tmp_path: Path) -> None:
    root = project_root(tmp_path, "  main: prod\n  develop: qa\n")
    shown = cli()("ci", "init", "drone", "--path", root, "--print", "--preview-from", "qa")
    assert shown.ok().out == render("drone", "qa")
    assert "--from qa --name" in shown.out
    assert [p.name for p in root.iterdir()] == ["dagship.yaml"], "--print writes nothing"
    cli()("ci", "init", "travis", "--path", root).failed("unknown CI system", "github")
    cli()("ci", "init", "github", "--path", root / "missing").failed("is not a folder")
    cli()("ci", "init", "github", "--path", root, "--preview-from", "a b").failed(
        "--preview-from must be a deployment name"
    )
    assert [p.name for p in root.iterdir()] == ["dagship.yaml"]


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
