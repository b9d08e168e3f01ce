"""``dagship promote``: make a deployment run exactly what another one runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli import waiting
from dagship.cli.common import JsonOption, TokenOption, UrlOption, client, err, out, print_json
from dagship.cli.deploys import render_diff
from dagship.cli.waiting import TimeoutOption

if TYPE_CHECKING:
    from dagship.flows.promote import PromoteResult


def promote_command(
    source: Annotated[
        str,
        typer.Option("--from", help="Deployment to promote from, e.g. dev.", show_default=False),
    ] = ...,  # type: ignore[assignment]
    target: Annotated[
        str, typer.Option("--to", help="Deployment to promote to, e.g. prod.", show_default=False)
    ] = ...,  # type: ignore[assignment]
    seq: Annotated[
        int | None,
        typer.Option(
            "--seq",
            min=1,
            help="The source's deploy #N. Default: its current deploy.",
            show_default=False,
        ),
    ] = None,
    expect_seq: Annotated[
        int | None,
        typer.Option(
            "--expect-seq",
            help="Fail unless the target's current deploy is #N (0: no deploy yet).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Why: recorded with the deploy.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what the promotion would change; change nothing."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Then wait until the target's Airflow has parsed the promoted version; "
            "exit 1 printing each import error.",
        ),
    ] = False,
    timeout: TimeoutOption = 300,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Promote: a new deploy on --to with exactly the versions of a --from deploy.

    Nothing is uploaded or rebuilt; the history records where the versions came from. When the
    target already runs them, nothing is deployed and the exit code is 0.
    """
    from dagship.flows.promote import promote

    started = waiting.now()
    with client(url, token) as api:
        result = promote(api, source, target, seq, expect_seq, description, dry_run)
        if not json:
            render(result, source, target)
        deploy = result.deploy
        if not wait or dry_run or deploy is None:
            if json:
                print_json(result.to_dict())
            return
        if not json:
            err.print(f"Promoted: deploy #{deploy['seq']} ({deploy['id']}).")
        waited = waiting.follow(api, deploy["id"], timeout, json, started)
    waiting.finish(result.to_dict(), waited, timeout, json)


def render(result: PromoteResult, source: str, target: str) -> None:
    origin = result.source
    what = f"{source} deploy #{origin['seq']} ({origin['id']})"
    deploy = result.deploy
    if result.unchanged:
        at = f" (deploy #{deploy['seq']})" if deploy else ""
        out.print(
            f"Deployment {target} already runs the versions of {what}{at}; nothing to promote."
        )
        return
    if result.dry_run:
        if deploy is None:
            out.print(
                f"Dry run: promoting {what} would make the first deploy of {target} "
                f"({origin['dags_files']} DAG files, {origin['project_files']} project files)."
            )
            return
        out.print(f"Dry run: promoting {what} to {target} (now at deploy #{deploy['seq']}):")
        assert result.diff is not None
        render_diff(result.diff)
        out.print("Nothing was changed.")
        return
    assert deploy is not None
    out.print(
        f"Promoted {what} to {target}: deploy #{deploy['seq']} ({deploy['id']}), "
        f"{deploy['kind']}, nothing uploaded."
    )
