"""``dagship rollback``: point a deployment back at an earlier deploy's versions."""

from __future__ import annotations

from typing import Annotated

import typer

from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, out, print_json, short


def rollback(
    deployment: Annotated[str, typer.Argument(metavar="NAME", help="Deployment name.")],
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            help="Deploy number to go back to. Default: the one before the current.",
            show_default=False,
        ),
    ] = None,
    expect_seq: Annotated[
        int | None,
        typer.Option(
            "--expect-seq", help="Fail unless the current deploy is #N.", show_default=False
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Why: recorded with the deploy.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Roll back: a new deploy with an earlier deploy's exact versions (no upload)."""
    with client(url, token) as api:
        result = api.rollback(deployment, to, expect_seq, description)
    deploy = result["deploy"]
    if json:
        print_json({**deploy, "unchanged": bool(result["unchanged"])})
        return
    if result["unchanged"]:
        out.print(
            f"Deployment {deployment} already runs those versions (deploy #{deploy['seq']}); "
            "nothing to roll back."
        )
        return
    source = deploy.get("source_deploy_id") or "an earlier deploy"
    out.print(
        f"Rolled back {deployment} to the versions of {source}: deploy #{deploy['seq']} "
        f"({deploy['id']}), DAGs {short(deploy['dags_version'])}, "
        f"project {short(deploy['project_version'])}."
    )
