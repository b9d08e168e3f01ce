"""The words of dagship's API, as enums: what a deploy carries, who made it, who may do what,
how a check went and where a deploy is in Airflow. Their values are the API's and the CLI's
JSON; being ``StrEnum``s they compare equal to those strings."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a deploy changes: the DAG bundle, the project, or both."""

    DAGS = "dags"
    PROJECT = "project"
    FULL = "full"


class Mode(StrEnum):
    """What a user asks ``dagship deploy`` to deploy; ``auto`` deploys whatever changed."""

    AUTO = "auto"
    DAGS = "dags"
    PROJECT = "project"
    FULL = "full"


class Origin(StrEnum):
    """How a deploy was made."""

    CLI = "cli"
    CI = "ci"
    S3 = "s3"
    ROLLBACK = "rollback"
    PROMOTE = "promote"


class Role(StrEnum):
    """What a token may do; each role may do everything the ones before it may."""

    VIEWER = "viewer"
    DAG_AUTHOR = "dag-author"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether a token with this role may do what ``needed`` may."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


class CheckOutcome(StrEnum):
    """How one check before a deploy went.

    ``passed``: it ran and passed; ``skipped``: the user chose not to run it (``--no-parse``);
    ``not-run``: it did not apply (a DAG-only deploy without ``--parse``; pytest not asked for).
    """

    PASSED = "passed"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"


class AirflowState(StrEnum):
    """Where a deploy's DAG version is in its deployment's Airflow (docs/api.md)."""

    NO_AIRFLOW = "no_airflow"
    WAITING = "waiting"
    PICKED_UP = "picked_up"
    PARSED = "parsed"
    FAILED = "failed"
    SUPERSEDED = "superseded"

    @property
    def done(self) -> bool:
        """Whether the answer is final: waiting longer would not change it."""
        return self in (
            AirflowState.PARSED,
            AirflowState.FAILED,
            AirflowState.SUPERSEDED,
            AirflowState.NO_AIRFLOW,
        )
