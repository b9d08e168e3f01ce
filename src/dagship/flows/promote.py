"""Promotion: make one deployment run exactly what another one runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagship.client.api import JSON, ApiClient


@dataclass(frozen=True)
class PromoteResult:
    """The server's answer; ``diff`` (what the promotion changes) only for dry runs."""

    answer: JSON
    diff: JSON | None = None

    @property
    def unchanged(self) -> bool:
        return bool(self.answer["unchanged"])

    @property
    def dry_run(self) -> bool:
        return bool(self.answer["dry_run"])

    @property
    def source(self) -> JSON:
        return dict(self.answer["source"])

    @property
    def deploy(self) -> JSON | None:
        return self.answer.get("deploy")

    def to_dict(self) -> dict[str, Any]:
        if self.dry_run:
            return {
                "dry_run": True,
                "unchanged": self.unchanged,
                "kind": self.answer.get("kind"),
                "source": self.source,
                "target": self.deploy,
                "dags": (self.diff or {}).get("dags"),
                "project": (self.diff or {}).get("project"),
            }
        return {**(self.deploy or {}), "unchanged": self.unchanged, "source": self.source}


def promote(
    client: ApiClient,
    source: str,
    target: str,
    seq: int | None = None,
    expect_seq: int | None = None,
    description: str | None = None,
    dry_run: bool = False,
) -> PromoteResult:
    """Promote deploy ``seq`` (default: the current one) of ``source`` to ``target``.

    A dry run is checked by the server like a real promotion (token, seq) and changes nothing;
    it comes back with the diff from the target's current deploy to the source deploy.
    """
    answer = client.promote(target, source, seq, expect_seq, description, dry_run)
    if not dry_run or answer["unchanged"] or answer.get("deploy") is None:
        return PromoteResult(answer)
    diff = client.diff_refs(answer["deploy"]["id"], answer["source"]["id"])
    return PromoteResult(answer, diff)
