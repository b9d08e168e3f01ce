"""``dagship s3``: DAG-only deploys from an S3 prefix (sync once, watch, Lambda zip)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    client,
    err,
    out,
    print_json,
    show,
)

if TYPE_CHECKING:
    from dagship.integrations.s3.sync import SyncResult

app = typer.Typer(
    help="Deploy the DAG files of an S3 bucket prefix: each change is one numbered deploy.",
    no_args_is_help=True,
)

S3UrlArgument = Annotated[str, typer.Argument(help="The prefix: s3://bucket/prefix.")]
DeploymentOption = Annotated[
    str, typer.Option("--deployment", "-d", help="The deployment to deploy to.")
]


@app.command()
def sync(
    s3_url: S3UrlArgument,
    deployment: DeploymentOption,
    description: Annotated[
        str | None, typer.Option("--description", "-m", help="Why, shown in the history.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Deploy the files under S3_URL as the deployment's DAGs (a DAG-only deploy, origin s3),
    unless it already runs exactly them. `.dagshipignore` at the prefix's root excludes
    files; `.airflowignore` is deployed and applied by Airflow. AWS settings (region,
    credentials, AWS_ENDPOINT_URL) apply; DAGSHIP_S3_ENDPOINT_URL names an S3-compatible
    store."""
    from dagship.integrations.s3.sync import sync_prefix

    with client(url, token) as api:
        result = sync_prefix(api, s3_url, deployment, description=description)
    show(result.to_dict(), lambda: _render(result, s3_url), json)


@app.command()
def watch(
    s3_url: S3UrlArgument,
    deployment: DeploymentOption,
    interval: Annotated[
        float, typer.Option("--interval", min=0.5, help="Seconds between syncs.")
    ] = 5.0,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Sync S3_URL every --interval seconds until interrupted, for S3-compatible stores
    without Lambda (MinIO, on-premises). A failed round deploys nothing and is retried."""
    from dagship.integrations.s3.watch import watch as run_watch

    def on_round(result: SyncResult | Exception) -> None:
        if isinstance(result, Exception):
            if json:
                print_json({"error": str(result)})
            else:
                err.print(f"Error: {result}")
        elif json:
            print_json(result.to_dict())
        elif not result.unchanged:
            _render(result, s3_url)

    with client(url, token) as api:
        run_watch(api, s3_url, deployment, interval, on_round)


@app.command("lambda-package")
def lambda_package(
    out_path: Annotated[Path, typer.Argument(help="The zip to write, e.g. dagship-lambda.zip.")],
    json: JsonOption = False,
) -> None:
    """Write a zip of the Lambda handler (dagship.integrations.s3.lambda_handler) with only
    the client-side dependencies; docs/s3.md shows how to deploy it."""
    from dagship.integrations.s3.package import write_lambda_package

    package = write_lambda_package(out_path)

    def render() -> None:
        out.print(f"Wrote {package.path}: {package.files} files, {package.size:,} bytes.")
        out.print(
            f"Handler dagship.integrations.s3.lambda_handler; runtime {package.runtime} "
            "(build it with the Python and architecture of the Lambda function)."
        )

    show(package.to_dict(), render, json)


def _render(result: SyncResult, s3_url: str) -> None:
    if result.unchanged:
        out.print(
            f"Nothing changed: {result.deployment_name} already runs the {result.files} "
            f"files of {s3_url} (deploy #{result.deploy.seq}). No deploy made."
        )
        return
    out.print(
        f"Deployed {s3_url} to {result.deployment_name}: deploy #{result.deploy.seq} "
        f"({result.files} files; read {result.read_objects} objects, "
        f"{result.read_bytes:,} bytes from S3; uploaded {result.uploaded_files} files)."
    )
