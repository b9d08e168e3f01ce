"""Every `dagship` command line in the generated pipelines and in action.yml, executed.

The lines run in bash as the CI system would run them: in a detached checkout of the project,
with that system's variables for a pull request (open or closed) or a push to `main`, and
DAGSHIP_URL / DAGSHIP_API_TOKEN set, against a real dagship server whose `main` deployment
feeds a real Airflow (so `--wait` waits for Airflow's parse). A `dagship` shim first on PATH
records each call, proving every line ran dagship rather than being skipped by a condition.

That Airflow is started by the tests, not by `dagship agent`, so a stand-in (``StandInAgent``)
reports it as running each project version the deployment gets: the lines' `--wait` is then
about the commands and Airflow's parse, as before agents existed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dagship.client.api import ApiClient
from dagship.client.errors import ApiError
from dagship.core.schemas import AgentReport
from dagship.core.vocabulary import AgentState, Component
from dagship.integrations.outputs import deploy_outputs
from dagship.integrations.pipelines import PIPELINES, render
from tests.airflow.conftest import AirflowSetup, airflow_setup  # noqa: F401
from tests.helpers import Cli, clean_env, git, make_project, unique, write

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"(?:^|;\s*|&&\s*|\bthen\s+)dagship\s+(?P<cmd>[a-z]+)(?:\s+(?P<sub>[a-z]+))?")
PR_NUMBER = "5"
# The first `--wait` includes starting Airflow and its first parse of the project.
pytestmark = pytest.mark.timeout(1200)


# --------------------------------------------------------------------------- CI variables


def ci_env(provider: str, scenario: str, branch: str) -> dict[str, str]:
    """The variables ``provider`` sets for ``scenario`` (pr, pr_closed, push to main)."""
    pr = scenario in ("pr", "pr_closed")
    head = branch if pr else "main"
    envs: dict[str, dict[str, str]] = {
        "github": {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request" if pr else "push",
            "GITHUB_REF": f"refs/pull/{PR_NUMBER}/merge" if pr else "refs/heads/main",
            "GITHUB_REF_NAME": f"{PR_NUMBER}/merge" if pr else "main",
            "GITHUB_HEAD_REF": branch if pr else "",
            "GITHUB_BASE_REF": "main" if pr else "",
        },
        "gitlab": {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event" if pr else "push",
            "CI_COMMIT_REF_NAME": head,
            **(
                {
                    "CI_MERGE_REQUEST_IID": PR_NUMBER,
                    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch,
                    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
                }
                if pr
                else {"CI_COMMIT_BRANCH": "main"}
            ),
        },
        "jenkins": {
            "JENKINS_URL": "http://jenkins.example/",
            "BRANCH_NAME": f"PR-{PR_NUMBER}" if pr else "main",
            **(
                {"CHANGE_ID": PR_NUMBER, "CHANGE_BRANCH": branch, "CHANGE_TARGET": "main"}
                if pr
                else {}
            ),
        },
        "bitbucket": {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "1",
            "BITBUCKET_BRANCH": head,
            **(
                {"BITBUCKET_PR_ID": PR_NUMBER, "BITBUCKET_PR_DESTINATION_BRANCH": "main"}
                if pr
                else {}
            ),
        },
        "azure": {
            "TF_BUILD": "True",
            "BUILD_REASON": "PullRequest" if pr else "IndividualCI",
            "BUILD_SOURCEBRANCH": f"refs/pull/{PR_NUMBER}/merge" if pr else "refs/heads/main",
            **(
                {
                    "SYSTEM_PULLREQUEST_PULLREQUESTID": PR_NUMBER,
                    "SYSTEM_PULLREQUEST_SOURCEBRANCH": f"refs/heads/{branch}",
                    "SYSTEM_PULLREQUEST_TARGETBRANCH": "refs/heads/main",
                }
                if pr
                else {}
            ),
        },
        "circleci": {"CI": "true", "CIRCLECI": "true", "CIRCLE_BRANCH": head},
        "codebuild": {
            "CODEBUILD_BUILD_ID": "dags:1",
            "CODEBUILD_WEBHOOK_EVENT": {
                "pr": "PULL_REQUEST_UPDATED",
                "pr_closed": "PULL_REQUEST_MERGED",
                "push": "PUSH",
            }[scenario],
            "CODEBUILD_WEBHOOK_HEAD_REF": f"refs/heads/{head}",
            "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main" if pr else "",
            "CODEBUILD_WEBHOOK_TRIGGER": f"pr/{PR_NUMBER}" if pr else "branch/main",
        },
        "cloudbuild": {
            "BUILD_ID": "b-1",
            "PROJECT_ID": "acme",
            "BRANCH_NAME": head,
            "TAG_NAME": "",
            "_PR_NUMBER": PR_NUMBER if pr else "",
            "_HEAD_BRANCH": branch if pr else "",
            "_BASE_BRANCH": "main" if pr else "",
        },
        "drone": {
            "CI": "true",
            "DRONE": "true",
            "DRONE_BUILD_EVENT": "pull_request" if pr else "push",
            "DRONE_BRANCH": "main",
            "DRONE_SOURCE_BRANCH": head,
            "DRONE_TARGET_BRANCH": "main",
            **({"DRONE_PULL_REQUEST": PR_NUMBER} if pr else {}),
        },
    }
    return envs[provider]


def scenario_of(line: str) -> str:
    match = COMMAND.search(line)
    assert match, line
    if match["cmd"] == "preview" and match["sub"] == "delete":
        return "pr_closed"
    return "push" if match["cmd"] == "deploy" else "pr"


# --------------------------------------------------------------------------- extraction


def yaml_strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in yaml_strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in yaml_strings(item)]
    return [node] if isinstance(node, str) else []


def command_lines(provider: str, text: str) -> list[str]:
    """The shell lines of a pipeline that run dagship (installing it aside)."""
    if provider == "jenkins":
        lines = re.findall(r"\bsh '([^']*)'", text)
    else:
        lines = [ln.strip() for s in yaml_strings(yaml.safe_load(text)) for ln in s.splitlines()]
    if provider == "cloudbuild":
        lines = [ln.replace("$$", "$") for ln in lines]  # Cloud Build's escape for `$`
    return [ln for ln in lines if COMMAND.search(ln) and "pip install" not in ln]


def test_extraction_finds_every_dagship_command() -> None:
    for provider in PIPELINES:
        text = render(provider, "dev")
        code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith(("#", "//")))
        written = len(re.findall(r"\bdagship (?:parse|test|deploy|preview)\b", code))
        assert len(command_lines(provider, text)) == written > 0, provider


# --------------------------------------------------------------------------- running


def reason(done: subprocess.CompletedProcess[str]) -> str:
    """The last line of stderr that says something (Click frames usage errors in a box)."""
    lines = [ln.strip(" │╭╮╰╯─") for ln in done.stderr.splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


@dataclass
class Bench:
    """A checkout of the project, a dagship shim on PATH and the server's coordinates."""

    setup: AirflowSetup
    checkout: Path
    bin: Path
    log: Path
    dev: str
    failures: list[str] = field(default_factory=list)

    @property
    def cli(self) -> Cli:
        return self.setup.cli

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def env(self, ci: dict[str, str]) -> dict[str, str]:
        env = clean_env()
        env.update(ci)
        env["DAGSHIP_URL"] = self.setup.server.url
        env["DAGSHIP_API_TOKEN"] = self.setup.server.admin_token
        env["DAGSHIP_SHIM_LOG"] = str(self.log)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def bash(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        # How GitHub Actions runs `shell: bash` steps; other systems run lines alike.
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def run_line(
        self, where: str, line: str, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        before = len(self.calls())
        done = self.bash(line, env)
        calls = self.calls()[before:]
        assert len(calls) == 1, f"{where}: `{line}` ran dagship {len(calls)} times\n{done.stderr}"
        if done.returncode != 0:
            self.failures.append(f"{where}: `{line}` exited {done.returncode}: {reason(done)}")
        return done


class StandInAgent(threading.Thread):
    """Follows the deployment's project version as `dagship agent run` does (long poll) and
    reports the test's Airflow as running each one, at least every 10 s.

    A stand-in: the Airflow of ``airflow_setup`` is started by the tests and its DAGs use
    nothing of the project. Where an Airflow must run the project, tests run the real agent.
    """

    def __init__(self, url: str, token: str, deployment: str) -> None:
        super().__init__(daemon=True)
        self.client = ApiClient(url, token)
        self.deployment = deployment
        self.stopped = threading.Event()

    def run(self) -> None:
        version = ""
        while not self.stopped.is_set():
            try:
                current = self.client.current_project(self.deployment, version, wait=10)
            except ApiError:  # no deploy yet
                current = None
                self.stopped.wait(0.5)
            version = current.version if current is not None else version
            report = AgentReport(
                host="stand-in",
                components=[Component.STANDALONE],
                state=AgentState.RUNNING if version else AgentState.WAITING,
                project_version=version,
            )
            self.client.report_agent(self.deployment, "stand-in", report)

    def stop(self) -> None:
        self.stopped.set()
        self.join(15)
        self.client.close()


@pytest.fixture(scope="module")
def bench(
    airflow_setup: AirflowSetup,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("ci")
    project = make_project(root / "project")
    dev = unique("dev")
    airflow_setup.api.create_deployment(dev)
    airflow_setup.cli("deploy", project, "-d", dev, "--no-parse").ok()
    write(project, "dagship.yaml", f"deployments:\n  main: {airflow_setup.deployment}\n")
    write(project, "tests/test_dags.py", "def test_nothing() -> None:\n    assert True\n")
    # The Airflow installed here: `dagship parse` / `dagship test` build their environment
    # from the Dockerfile's version.
    write(project, "Dockerfile", "FROM apache/airflow:3.3.2\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", ".")
    git(project, "commit", "-qm", "The project")
    checkout = root / "checkout"
    git(root, "clone", "-q", str(project), str(checkout))
    git(checkout, "checkout", "-q", "--detach")
    shim_dir = root / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "dagship"
    shim.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['DAGSHIP_SHIM_LOG'], 'a') as log:\n"
        "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "from dagship.cli.main import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    shim.chmod(0o755)
    server = airflow_setup.server
    agent = StandInAgent(server.url, server.admin_token, airflow_setup.deployment)
    agent.start()
    try:
        yield Bench(airflow_setup, checkout, shim_dir, root / "calls.jsonl", dev)
    finally:
        agent.stop()


def preview_name(bench: Bench, branch: str) -> str:
    return str(bench.cli("preview", "name", branch, "--json").ok().json()["name"])


@pytest.mark.parametrize("provider", list(PIPELINES))
def test_pipeline_commands_run_against_a_real_server(bench: Bench, provider: str) -> None:
    branch = f"feature/{provider}-{uuid.uuid4().hex[:6]} fix"
    api = bench.setup.api
    lines = command_lines(provider, render(provider, bench.dev))
    ran: dict[str, str] = {}
    failures_before = len(bench.failures)
    for line in lines:
        scenario = scenario_of(line)
        done = bench.run_line(provider, line, bench.env(ci_env(provider, scenario, branch)))
        ran[line] = done.stdout + done.stderr
        if "deploy . --branch auto" in line:
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"Branch main ({provider}) deploys to {bench.setup.deployment}." in done.stdout
            assert "Airflow parsed it" in done.stderr
        if "preview create" in line:
            assert done.returncode == 0, done.stderr
            assert api.get(f"/deployments/{preview_name(bench, branch)}").status_code == 200
    history = api.deploys(bench.setup.deployment)
    assert history and history[-1]["git_branch"] == "main" and history[-1]["origin"] == "ci"
    name = preview_name(bench, branch)
    if PIPELINES[provider].previews:
        deleted = any("preview delete" in line for line in lines)
        status = api.get(f"/deployments/{name}").status_code
        assert status == (404 if deleted else 200), (provider, status)
        if not deleted:
            bench.cli("preview", "delete", "--name", branch).ok()
    failed = bench.failures[failures_before:]
    unexpected = [f for f in failed if not re.search(r"\bdagship (parse|test) \.", f)]
    assert not unexpected, "\n".join(unexpected)
    assert not failed, "only `dagship parse`/`dagship test` failed:\n" + "\n".join(failed)


# --------------------------------------------------------------------------- action.yml

ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def action_context(inputs: dict[str, str], event: str, action: str, head: str) -> dict[str, str]:
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in ACTION["inputs"].items()}
    values.update({f"inputs.{k}": v for k, v in inputs.items()})
    values.update(
        {"github.event_name": event, "github.event.action": action, "github.head_ref": head}
    )
    return values


def run_action(
    bench: Bench, tmp: Path, context: dict[str, str], ci: dict[str, str]
) -> tuple[dict[str, str], list[subprocess.CompletedProcess[str]]]:
    """Run the action's steps (but installing) in order; return its outputs and each run."""
    output_file = tmp / f"output-{uuid.uuid4().hex[:6]}"
    output_file.touch()
    runner_temp = tmp / f"runner-{uuid.uuid4().hex[:6]}"
    runner_temp.mkdir()
    results = []
    for step in ACTION["runs"]["steps"]:
        assert step["shell"] == "bash"
        if "pip install" in step["run"]:
            assert '"$GITHUB_ACTION_PATH"' in step["run"], "install dagship from the action"
            continue
        env = bench.env(ci)
        env.update({"GITHUB_OUTPUT": str(output_file), "RUNNER_TEMP": str(runner_temp)})
        for key, value in (step.get("env") or {}).items():
            env[key] = EXPRESSION.sub(lambda m: context[m.group(1)], str(value))
        assert "${{" not in step["run"], "expressions go through env:, never into scripts"
        done = bench.bash(step["run"], env)
        results.append(done)
        if done.returncode != 0:
            bench.failures.append(
                f"action step {step['name']!r} exited {done.returncode}: {reason(done)}"
            )
            if "dagship parse" not in step["run"] and "dagship test" not in step["run"]:
                break
    outputs = parse_github_output(output_file.read_text())
    return outputs, results


def parse_github_output(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        key, _, marker = line.partition("<<")
        value = []
        for inner in lines:
            if inner == marker:
                break
            value.append(inner)
        found[key] = "\n".join(value)
    return found


def github_ci(event: str, head: str, branch: str = "main") -> dict[str, str]:
    pr = event == "pull_request"
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REF": f"refs/pull/{PR_NUMBER}/merge" if pr else f"refs/heads/{branch}",
        "GITHUB_REF_NAME": f"{PR_NUMBER}/merge" if pr else branch,
        "GITHUB_HEAD_REF": head,
    }


def test_action_outputs_are_what_dagship_ci_outputs_writes() -> None:
    written = set(deploy_outputs({}))
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.outputs.outputs.{name} }}}}"
        assert name in written
    used = set(EXPRESSION.findall((REPO_ROOT / "action.yml").read_text()))
    known = set(action_context({}, "push", "", "")) | {
        f"steps.outputs.outputs.{n}" for n in ACTION["outputs"]
    }
    assert used <= known, used - known


def test_action_push_deploys_the_mapped_deployment(bench: Bench, tmp_path: Path) -> None:
    failures_before = len(bench.failures)
    context = action_context({}, "push", "", "")
    outputs, _ = run_action(bench, tmp_path, context, github_ci("push", ""))
    current = bench.setup.api.deploys(bench.setup.deployment)[0]
    assert outputs == {
        "deployed": outputs["deployed"],
        "deployment": bench.setup.deployment,
        "deploy-id": current["id"],
        "seq": str(current["seq"]),
        "dags-version": current["dags_version"],
        "project-version": current["project_version"],
    }
    assert_only_parse_or_test_failed(bench.failures[failures_before:])


def test_action_named_deployment_full_description_no_wait(bench: Bench, tmp_path: Path) -> None:
    failures_before = len(bench.failures)
    write(bench.checkout, "dags/extra.py", f"# {unique()}\n")
    inputs = {
        "deployment": bench.dev,
        "deploy-type": "full",
        "description": "from the action's test",
        "wait": "false",
        "parse": "false",
    }
    outputs, _ = run_action(
        bench, tmp_path, action_context(inputs, "push", "", ""), github_ci("push", "")
    )
    latest = bench.setup.api.deploys(bench.dev)[0]
    assert (latest["kind"], latest["description"], latest["origin"]) == (
        "full",
        "from the action's test",
        "ci",
    )
    assert (outputs["deployed"], outputs["deploy-id"]) == ("true", latest["id"])
    assert bench.failures[failures_before:] == []
    (bench.checkout / "dags/extra.py").unlink()


def test_action_unmapped_branch_is_a_no_op(bench: Bench, tmp_path: Path) -> None:
    failures_before = len(bench.failures)
    before = bench.setup.api.deploy_count(bench.setup.deployment)
    inputs = {"parse": "false"}
    outputs, results = run_action(
        bench,
        tmp_path,
        action_context(inputs, "push", "", ""),
        github_ci("push", "", branch="feature/unmapped"),
    )
    assert outputs["deployed"] == "false" and outputs["deploy-id"] == ""
    assert any("maps to no deployment" in r.stdout for r in results)
    assert bench.setup.api.deploy_count(bench.setup.deployment) == before
    assert bench.failures[failures_before:] == []


def test_action_pull_request_preview_lifecycle(bench: Bench, tmp_path: Path) -> None:
    failures_before = len(bench.failures)
    branch = f"feature/ABC-12 fix {uuid.uuid4().hex[:4]}"
    name = preview_name(bench, branch)
    inputs = {"preview": "true", "preview-from": bench.dev, "pytest": "true"}
    ci = github_ci("pull_request", branch)
    for action in ("opened", "synchronize"):
        outputs, _ = run_action(
            bench, tmp_path, action_context(inputs, "pull_request", action, branch), ci
        )
        assert outputs["deployment"] == name, outputs
    assert bench.setup.api.get(f"/deployments/{name}").status_code == 200
    closed = action_context(inputs, "pull_request", "closed", branch)
    run_action(bench, tmp_path, closed, ci)
    assert bench.setup.api.get(f"/deployments/{name}").status_code == 404
    assert_only_parse_or_test_failed(bench.failures[failures_before:])
    # Previews off: a pull request deploys nothing and says so.
    off = action_context({"parse": "false"}, "pull_request", "opened", branch)
    _, results = run_action(bench, tmp_path, off, ci)
    assert any("previews are off" in r.stdout for r in results)
    assert bench.setup.api.get(f"/deployments/{name}").status_code == 404


def test_action_refuses_an_unknown_deploy_type(bench: Bench, tmp_path: Path) -> None:
    failures_before = len(bench.failures)
    context = action_context({"deploy-type": "everything", "parse": "false"}, "push", "", "")
    _, results = run_action(bench, tmp_path, context, github_ci("push", ""))
    assert results[-1].returncode == 2
    assert "deploy-type must be auto, dags, project or full" in results[-1].stdout
    assert len(bench.failures) == failures_before + 1
    del bench.failures[failures_before:]


def assert_only_parse_or_test_failed(failures: list[str]) -> None:
    unexpected = [f for f in failures if not re.search(r"Parse the DAGs|Run the tests", f)]
    assert not unexpected, "\n".join(unexpected)
    assert not failures, "only `dagship parse`/`dagship test` failed:\n" + "\n".join(failures)
