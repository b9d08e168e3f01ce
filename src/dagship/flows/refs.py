"""Deploy references (``dagship.core.refs``) as the commands take them: read here, so a
malformed one fails before any request, and resolved by the server."""

from __future__ import annotations

from dagship.client.api import ApiClient
from dagship.client.errors import ClientError
from dagship.core.refs import parse_ref
from dagship.core.schemas import DeployOut


def resolve(client: ApiClient, text: str) -> DeployOut:
    """The deploy ``text`` names now: ``prod``, ``prod:5``, ``prod~1`` or ``dpl_…``."""
    return client.get_deploy(parse_ref(text).text)


def rollback_seq(client: ApiClient, deployment: str, text: str) -> int:
    """The deploy number rollback's ``--to`` names: a bare SEQ of ``deployment``, or a
    reference to one of its deploys (``prod~2``, ``prod:5``, ``dpl_…``)."""
    if text.strip().isdigit():
        return int(text)
    deploy = resolve(client, text)
    if deploy.deployment != deployment:
        raise ClientError(
            f"{text.strip()} is deploy #{deploy.seq} of {deploy.deployment}, not of {deployment}: "
            f"a rollback goes back to a deploy of its own deployment; to run its versions on "
            f"{deployment}, use `dagship promote --from {text.strip()} --to {deployment}`"
        )
    return deploy.seq


def promote_source(client: ApiClient, text: str, seq: int | None) -> tuple[str, int | None]:
    """The deployment and deploy number promote's ``--from`` names, with ``--seq``: a plain
    NAME is its deploy ``seq`` (default: its current one at promotion time); any other
    reference is resolved now and cannot take ``--seq``."""
    ref = parse_ref(text)
    if ref.is_current:
        return ref.deployment, seq
    if seq is not None:
        raise ClientError(
            f"--from {ref.text} already names one deploy; --seq goes with a deployment name "
            f"(--from NAME --seq N)"
        )
    deploy = client.get_deploy(ref.text)
    return deploy.deployment, deploy.seq
