"""Which kind of deploy a change is: the rule shared by deploy, rollback and promote.

A deploy moves a deployment from its current ``(dags_version, project_version)`` to new ones.
``auto`` deploys what differs: ``dags`` when only the DAG version changes, ``project`` when
only the project version changes, ``full`` when both do or the deployment has no deploy yet.
``dags`` / ``project`` ask for one tree only (nothing to do when that tree is unchanged);
``full`` asks for both trees whenever either differs. A deployment with DAG deploys disabled
takes only ``full`` deploys, so every change there is ``full`` (a ``dags`` request is refused
before this rule is asked).
"""

from __future__ import annotations

from typing import NamedTuple

from dagship.core.vocabulary import Kind, Mode


class Versions(NamedTuple):
    """The state a deploy records: a DAG version and a project version."""

    dags: str
    project: str


def choose_kind(
    current: Versions | None, new: Versions, *, dag_deploys: bool = True, mode: Mode = Mode.AUTO
) -> Kind | None:
    """The kind of deploy that takes a deployment from ``current`` to ``new``; None when
    there is nothing to deploy."""
    dags_differ = current is None or current.dags != new.dags
    project_differs = current is None or current.project != new.project
    if mode == Mode.DAGS:
        return Kind.DAGS if dags_differ else None
    if mode == Mode.PROJECT and dag_deploys:
        return Kind.PROJECT if project_differs else None
    if not (dags_differ or project_differs):
        return None
    if mode == Mode.FULL or not dag_deploys or (dags_differ and project_differs):
        return Kind.FULL
    return Kind.DAGS if dags_differ else Kind.PROJECT
