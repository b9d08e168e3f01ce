"""``dagship deploy --branch`` to a promote-only deployment: deploy to its source, then promote.

A branch that ``dagship.yaml`` maps to a deployment protected with ``deployment update NAME
--promote-only --from SOURCE`` (docs/guard-rails.md) cannot deploy to it directly.
Its CI deploys the build to SOURCE instead, waits there when asked (a failure in SOURCE's
Airflow stops before the promotion), and promotes that very deploy to the protected deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagship.cli import waiting
from dagship.cli.common import out

if TYPE_CHECKING:
    from dagship.client.api import ApiClient
    from dagship.core.schemas import DeployOut
    from dagship.flows.deploy import DeployResult
    from dagship.flows.promote import PromoteResult
    from dagship.integrations.branch import BranchTarget

# waiting.conclude with the command's wait, timeout, json, started and rollback options bound.
Conclude = Callable[..., None]


def promote_deployed(
    api: ApiClient,
    deployed: DeployResult,
    target: BranchTarget,
    conclude: Conclude,
    wait: tuple[bool, float, bool, float],
) -> None:
    """Promote ``deployed`` (a deploy to the protected deployment's source) to the target
    deployment; ``wait`` is (wait, timeout, json, started)."""
    from dagship.cli.deploy import render
    from dagship.flows.promote import promote

    waits, timeout, json, started = wait
    name = target.deployment
    assert name is not None
    if not json:
        render(deployed, target)
        out.print(f"Deployment {name} takes promotions only: promoting from {deployed.deployment}.")
    if waits:
        waited = waiting.follow(api, deployed.id, timeout, json, started)
        if not waited.ok:
            # The build failed in the source's Airflow: the protected deployment keeps its code.
            document = {**_document(deployed, target), "promoted": False}
            waiting.finish({**document, **waiting.waited_fields(waited)}, waited, timeout, json)
    result = promote(api, deployed.deployment, name, seq=deployed.seq)
    document = {
        **result.to_dict(),
        "deployed": not result.unchanged,
        "via": deployed.to_dict(),
        **target.to_dict(),
    }
    conclude(api, document, result.deploy, lambda: _render(result, name), made=not result.unchanged)


def _document(deployed: DeployResult, target: BranchTarget) -> dict[str, Any]:
    return {"via": deployed.to_dict(), **target.to_dict(), "deployed": False}


def _render(result: PromoteResult, name: str) -> None:
    deploy: DeployOut | None = result.deploy
    source = result.source
    what = f"{source.deployment} deploy #{source.seq}"
    if result.unchanged or deploy is None:
        out.print(f"Deployment {name} already runs the versions of {what}; nothing to promote.")
        return
    out.print(f"Promoted {what} to {name}: deploy #{deploy.seq} ({deploy.id}), {deploy.kind}.")
