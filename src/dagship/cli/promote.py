"""``dagship promote``: make a deployment run exactly what another one runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli import waiting
from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, out
from dagship.cli.deploys import render_diff
from dagship.cli.options import (
    DeployDescriptionOption,
    ExpectSeqOption,
    RollbackOnFailureOption,
    TimeoutOption,
    WaitOption,
)
from dagship.core.refs import FORMS

if TYPE_CHECKING:
    from dagship.flows.promote import PromoteResult


def promote_command(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="REF",
            help="The deploy to promote: a deployment (its current deploy, or its --seq N), "
            "e.g. dev, or any deploy reference: " + FORMS + ".",
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    target: Annotated[
        str, typer.Option("--to", help="Deployment to promote to, e.g. prod.", show_default=False)
    ] = ...,  # type: ignore[assignment]
    seq: Annotated[
        int | None,
        typer.Option(
            "--seq",
            min=1,
            help="With --from NAME: its deploy #N (the same as --from NAME:N). "
            "Default: its current deploy.",
            show_default=False,
        ),
    ] = None,
    expect_seq: ExpectSeqOption = None,
    description: DeployDescriptionOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what the promotion would change; change nothing."),
    ] = False,
    wait: WaitOption = False,
    rollback_on_failure: RollbackOnFailureOption = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Promote: a new deploy on --to with exactly the versions of a --from deploy.

    Nothing is uploaded or rebuilt; the history records where the versions came from. When the
    target already runs them, nothing is deployed and the exit code is 0. --expect-seq is about
    the target's current deploy.
    """
    from dagship.flows.promote import promote

    started = waiting.now()
    with client(url, token) as api:
        result = promote(api, source, target, seq, expect_seq, description, dry_run)
        waiting.conclude(
            api,
            result.to_dict(),
            None if dry_run else result.deploy,
            lambda: render(result, target),
            wait=wait,
            timeout=timeout,
            json=json,
            started=started,
            rollback_on_failure=rollback_on_failure,
            made=not result.unchanged,
        )


def render(result: PromoteResult, target: str) -> None:
    origin = result.source
    what = f"{origin.deployment} deploy #{origin.seq} ({origin.id})"
    deploy = result.deploy
    if result.unchanged:
        at = f" (deploy #{deploy.seq})" if deploy else ""
        out.print(
            f"Deployment {target}{at} already runs the versions of {what}; nothing to promote."
        )
    elif result.dry_run:
        _render_dry_run(result, what, target)
    else:
        assert deploy is not None
        out.print(
            f"Promoted {what} to {target}: deploy #{deploy.seq} ({deploy.id}), "
            f"{deploy.kind}, nothing uploaded."
        )


def _render_dry_run(result: PromoteResult, what: str, target: str) -> None:
    origin, deploy = result.source, result.deploy
    if deploy is None:
        out.print(
            f"Dry run: promoting {what} would make the first deploy of {target} "
            f"({origin.dags_files} DAG files, {origin.project_files} project files)."
        )
        return
    out.print(f"Dry run: promoting {what} to {target} (now at deploy #{deploy.seq}):")
    assert result.diff is not None
    render_diff(result.diff)
    out.print("Nothing was changed.")
