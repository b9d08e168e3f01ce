"""``dagship rollback``: point a deployment back at an earlier deploy's versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli import waiting
from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, out, short
from dagship.cli.options import (
    DeployDescriptionOption,
    ExpectSeqOption,
    TimeoutOption,
    WaitOption,
)

if TYPE_CHECKING:
    from dagship.core.schemas import RollbackOut


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
    expect_seq: ExpectSeqOption = None,
    description: DeployDescriptionOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Roll back: a new deploy with an earlier deploy's exact versions (no upload).

    With --wait, follow it as `dagship deploy --wait` does: its agents switch back to the
    earlier project version (if it differs), then Airflow parses the DAG version.
    """
    started = waiting.now()
    with client(url, token) as api:
        result = api.rollback(deployment, to, expect_seq, description)
        document = {**result.deploy.model_dump(mode="json"), "unchanged": result.unchanged}
        waiting.conclude(
            api,
            document,
            result.deploy,
            lambda: render(result),
            wait=wait,
            timeout=timeout,
            json=json,
            started=started,
            verb="Rolled back",
        )


def render(result: RollbackOut) -> None:
    deploy = result.deploy
    if result.unchanged:
        out.print(
            f"Deployment {deploy.deployment} already runs those versions (deploy #{deploy.seq}); "
            "nothing to roll back."
        )
        return
    source = deploy.source_deploy_id or "an earlier deploy"
    out.print(
        f"Rolled back {deploy.deployment} to the versions of {source}: deploy #{deploy.seq} "
        f"({deploy.id}), DAGs {short(deploy.dags_version)}, "
        f"project {short(deploy.project_version)}."
    )
