"""Options that several commands share: the ones of the commands that make a deploy
(`deploy`, `preview deploy`, `promote`, `rollback`) and of waiting for Airflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectPathArg = Annotated[
    Path, typer.Argument(help="The project folder (the one holding dags/). Default: here.")
]
DagsOption = Annotated[
    bool, typer.Option("--dags", help="Deploy only the DAG bundle (the dags/ folder).")
]
ProjectOnlyOption = Annotated[
    bool, typer.Option("--project", help="Deploy only the project (everything but dags/).")
]
ExpectSeqOption = Annotated[
    int | None,
    typer.Option(
        "--expect-seq",
        help="Fail unless the deployment's current deploy is #N (0: no deploy yet).",
        show_default=False,
    ),
]
DeployDescriptionOption = Annotated[
    str | None, typer.Option("--description", help="Why: recorded with the deploy.")
]

# The checks before a deploy (docs/validate.md).
ParseOption = Annotated[
    bool | None,
    typer.Option(
        "--parse/--no-parse",
        help="Parse the DAGs (`dagship parse`) before deploying; a parse error blocks the "
        "deploy. Default: before every deploy, DAG-only ones too; files unchanged since the "
        "last parse, with unchanged imports, are not parsed again. --no-parse deploys "
        "unchecked and records that the check was skipped.",
        show_default=False,
    ),
]
PytestOption = Annotated[
    bool,
    typer.Option(
        "--pytest", help="Also run the project's tests (`dagship test`); a failure blocks."
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Check with the Airflow installed next to dagship instead of the "
        "deployment's environment (built with uv from the Dockerfile or dagship.yaml).",
    ),
]

WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Then wait until the deployment's agents run the new project version (when it "
        "changed) and its Airflow has parsed the new DAG version; exit 1 printing each agent "
        "error or import error (file and traceback).",
    ),
]
RollbackOnFailureOption = Annotated[
    bool,
    typer.Option(
        "--rollback-on-failure",
        help="Implies --wait. When Airflow reports import errors for the new version, or an "
        "agent fails to apply it, roll back to the deploy before it (the rollback records "
        "why), wait until that is live, and exit 1.",
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=1, help="With --wait: give up after this many seconds (exit 1)."),
]
AllowEmptyOption = Annotated[
    bool,
    typer.Option(
        "--allow-empty",
        help="Deploy even if the DAG bundle is empty while the deployment's current deploy "
        "has DAG files (without it, such a deploy is refused: nothing changes, exit 1).",
    ),
]
AllowRemovalsOption = Annotated[
    bool,
    typer.Option(
        "--allow-removals",
        help="Deploy even if it removes more of the current DAG files than the deployment "
        "allows (default: more than half, and at least 10; see `dagship deployment update "
        "--max-removal-ratio`).",
    ),
]
