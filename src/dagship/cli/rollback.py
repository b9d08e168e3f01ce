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
        str | None,
        typer.Option(
            "--to",
            metavar="SEQ|REF",
            help="The deploy to go back to: its number (SEQ) or a deploy reference to one of "
            "the deployment's deploys, e.g. prod~2 or prod:5. Default: the one before the "
            "current (NAME~1).",
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
    from dagship.flows.refs import rollback_seq

    with client(url, token) as api:
        to_seq = None if to is None else rollback_seq(api, deployment, to)
        result = api.rollback(deployment, to_seq, expect_seq, description)
        document = {
            **result.deploy.model_dump(mode="json"),
            "unchanged": result.unchanged,
            "source": result.source.model_dump(mode="json") if result.source else None,
        }
        waiting.conclude(
            api,
            document,
            result.deploy,
            lambda: render(result),
            wait=wait,
            timeout=timeout,
            json=json,
            started=started,
        )


def render(result: RollbackOut) -> None:
    deploy, source = result.deploy, result.source
    what = f"deploy #{source.seq} ({source.id})" if source else "an earlier deploy"
    if result.unchanged:
        out.print(
            f"Deployment {deploy.deployment} (deploy #{deploy.seq}) already runs the versions "
            f"of {what}; nothing to roll back."
        )
        return
    out.print(
        f"Rolled back {deploy.deployment} to {what}: deploy #{deploy.seq} "
        f"({deploy.id}), DAGs {short(deploy.dags_version)}, "
        f"project {short(deploy.project_version)}."
    )
