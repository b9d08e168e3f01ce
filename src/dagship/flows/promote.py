"""Promotion: make one deployment run exactly what another one runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagship.client.api import ApiClient
from dagship.core.schemas import DeployOut, DiffOut, PromoteOut
from dagship.flows.refs import promote_source


@dataclass(frozen=True)
class PromoteResult:
    """The server's answer; ``diff`` (what the promotion changes) only for dry runs."""

    answer: PromoteOut
    diff: DiffOut | None = None

    @property
    def unchanged(self) -> bool:
        return self.answer.unchanged

    @property
    def dry_run(self) -> bool:
        return self.answer.dry_run

    @property
    def source(self) -> DeployOut:
        return self.answer.source

    @property
    def deploy(self) -> DeployOut | None:
        """The new deploy; the target's current one when unchanged or a dry run."""
        return self.answer.deploy

    def to_dict(self) -> dict[str, Any]:
        """A dry run: the kind, source, target and the diff; else the new (or current) deploy
        with ``unchanged`` and its ``source``."""
        answer = self.answer.model_dump(mode="json")
        if self.dry_run:
            return {
                "dry_run": True,
                "unchanged": self.unchanged,
                "kind": answer["kind"],
                "source": answer["source"],
                "target": answer["deploy"],
                "dags": self.diff.dags.model_dump() if self.diff else None,
                "project": self.diff.project.model_dump() if self.diff else None,
            }
        return {**(answer["deploy"] or {}), "unchanged": self.unchanged, "source": answer["source"]}


def protected_source(client: ApiClient, deployment: str) -> str | None:
    """The deployment whose deploys ``deployment`` takes when it is promote-only from one
    source; None when it takes direct deploys (or promotions from any deployment)."""
    target = client.get_deployment(deployment)
    return target.promote_from if target.promote_only else None


def promote(
    client: ApiClient,
    source: str,
    target: str,
    seq: int | None = None,
    expect_seq: int | None = None,
    description: str | None = None,
    dry_run: bool = False,
) -> PromoteResult:
    """Promote the deploy ``source`` names (a deploy reference; a plain deployment name means
    its deploy ``seq``, default the current one) to ``target``.

    A dry run is checked by the server like a real promotion (token, seq) and changes nothing;
    it comes back with the diff from the target's current deploy to the source deploy.
    """
    deployment, seq = promote_source(client, source, seq)
    answer = client.promote(target, deployment, seq, expect_seq, description, dry_run)
    if not dry_run or answer.unchanged or answer.deploy is None:
        return PromoteResult(answer)
    return PromoteResult(answer, client.diff_refs(answer.deploy.id, answer.source.id))
