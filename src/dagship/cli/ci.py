"""``dagship ci``: pipelines for CI systems, what dagship sees of a CI build, action outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli.common import JsonOption, commit_label, fail, out, show

if TYPE_CHECKING:
    from dagship.integrations.pipelines import Written

app = typer.Typer(
    help="Set up CI: write a pipeline file, show what dagship reads from a CI build.",
    no_args_is_help=True,
)

PROVIDERS = "github, gitlab, jenkins, bitbucket, azure, circleci, codebuild, cloudbuild, drone"


@app.command()
def init(
    provider: Annotated[str, typer.Argument(help=f"The CI system: {PROVIDERS}.")],
    path: Annotated[
        Path, typer.Option("--path", help="The repository's root folder. Default: here.")
    ] = Path("."),
    preview_from: Annotated[
        str | None,
        typer.Option(
            "--preview-from",
            help="The deployment pull-request previews copy; dagship.yaml must map a branch "
            "to it. Default: the deployment of the first branch dagship.yaml maps.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the pipeline file if it exists.")
    ] = False,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the pipeline on stdout; write nothing.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Write a ready pipeline for PROVIDER: pull requests are parsed, tested and previewed;
    pushes run `dagship deploy --branch auto --wait` (dagship.yaml maps branches to
    deployments: the file must have that map). Secrets DAGSHIP_URL and DAGSHIP_API_TOKEN come
    from the system's store.
    """
    from dagship.integrations.pipelines import project_pipeline, write_pipeline

    if print_only:
        sys.stdout.write(project_pipeline(provider, path, preview_from))
        return
    written = write_pipeline(provider, path, preview_from, force)
    show(written.to_dict(), lambda: _render_written(written), json)


def _render_written(written: Written) -> None:
    verb = "Replaced" if written.replaced else "Wrote"
    out.print(f"{verb} {written.path}: the dagship pipeline for {written.pipeline.name}.")
    if written.pipeline.previews:
        out.print(f"Pull request previews copy deployment {written.preview_from}.")
    out.print(
        "Next: store DAGSHIP_URL and DAGSHIP_API_TOKEN as secrets (see the comments at the "
        "top of the file) and commit the file; dagship.yaml's `deployments:` map decides "
        "where each push deploys."
    )


@app.command()
def detect(
    path: Annotated[
        Path, typer.Argument(help="The project folder (holding dagship.yaml). Default: here.")
    ] = Path("."),
    json: JsonOption = False,
) -> None:
    """Show what dagship reads from this CI build: system, event, branch, pull request,
    the commit deployed (git's, else the CI system's) and whether the project differs from it,
    and the deployment `dagship deploy --branch auto` would deploy to."""
    from dagship.integrations.branch import BranchError, branch_target
    from dagship.integrations.source import build_source

    source = build_source(path)
    build = source.ci
    try:
        target = branch_target(path, "auto")
        deployment, reason = target.deployment, target.reason
        branch = target.branch
    except BranchError as exc:
        deployment, reason, branch = None, str(exc), build.branch
    document = {
        **build.to_dict(),
        "branch": branch,
        "sha": source.sha,
        "dirty": source.dirty,
        "deployment": deployment,
        "reason": reason,
    }

    def human() -> None:
        out.print(f"CI system     {build.name}")
        out.print(
            f"event         {build.event}" + (f" #{build.pr_number}" if build.pr_number else "")
        )
        out.print(f"branch        {branch or '-'}")
        out.print(f"commit        {commit_label(source.sha, source.dirty)}")
        out.print(f"deploys to    {deployment or '-'}" + (f"  ({reason})" if reason else ""))

    show(document, human, json)


@app.command()
def outputs(
    result: Annotated[
        Path, typer.Argument(help="A file holding the output of `dagship deploy --json`.")
    ],
    github_output: Annotated[
        str | None,
        typer.Option(
            "--github-output",
            help="The step outputs file to append to. Default: $GITHUB_OUTPUT.",
            show_default=False,
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Set GitHub Actions step outputs (deployed, deployment, deploy-id, seq, dags-version,
    project-version) from a deploy's JSON, and print them."""
    from dagship.integrations.outputs import deploy_outputs, read_deploy_json, write_github_outputs

    values = deploy_outputs(read_deploy_json(result))
    target = github_output or os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise fail(
            "no outputs file: GITHUB_OUTPUT is not set (not in GitHub Actions); "
            "pass --github-output FILE"
        )
    write_github_outputs(values, target)

    def human() -> None:
        for key, value in values.items():
            out.print(f"{key:16}{value or '-'}")

    show(values, human, json)
