"""``dagship agent run``: run a deployment's Airflow components on this host (docs/agent.md)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from dagship.core.vocabulary import Component

app = typer.Typer(
    help="Run Airflow on this host from a deployment's project version (docs/agent.md).",
    no_args_is_help=True,
)

DeploymentOption = Annotated[
    str, typer.Option("--deployment", "-d", help="The deployment to follow.", show_default=False)
]
ComponentOption = Annotated[
    list[Component] | None,
    typer.Option(
        "--component",
        "-c",
        help="An Airflow component to run here; repeat for several. Default: standalone "
        "(API server, scheduler, DAG processor, triggerer and the LocalExecutor).",
        show_default=False,
    ),
]
HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Where the agent keeps project trees, logs, its state and Airflow's home. "
        "Default: $DAGSHIP_HOME/agent.",
        show_default=False,
        file_okay=False,
    ),
]
GracePeriodOption = Annotated[
    str,
    typer.Option(
        "--grace-period",
        help="How long a Celery worker (or standalone's LocalExecutor) may finish its running "
        "tasks before a restart ends them (90s, 10m, ...).",
    ),
]
InstallOsPackagesOption = Annotated[
    bool,
    typer.Option(
        "--install-os-packages",
        help="Install the project's packages.txt with apt-get when missing (else a missing "
        "package fails the apply).",
    ),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        "--url",
        help="dagship server URL. Default: $DAGSHIP_URL, else http://127.0.0.1:8787.",
        show_default=False,
    ),
]


@app.command("run")
def run_command(
    deployment: DeploymentOption,
    components: ComponentOption = None,
    home: HomeOption = None,
    grace_period: GracePeriodOption = "10m",
    install_os_packages: InstallOsPackagesOption = False,
    url: ServerOption = None,
) -> None:
    """Follow DEPLOYMENT's project version and run the Airflow components named on this host:
    build each new version's environment (the one `dagship parse` checks), switch to it, and
    report to the server so that `dagship deploy --wait` covers project deploys. The token is
    $DAGSHIP_API_TOKEN (a viewer token bound to the deployment is enough); Airflow settings are
    this process's AIRFLOW__* variables. Runs until SIGTERM or Ctrl-C, which stop the
    components."""
    from dagship.agent.loop import AgentOptions, check_components, run_agent
    from dagship.client.settings import dagship_home, resolve_settings
    from dagship.core.durations import parse_duration

    check_components(list(components or []))
    settings = resolve_settings(url)
    options = AgentOptions(
        deployment=deployment,
        components=list(components or [Component.STANDALONE]),
        home=home or dagship_home() / "agent",
        server_url=settings.url,
        token=settings.token,
        grace_period=parse_duration(grace_period),
        install_os_packages=install_os_packages,
        base_env=dict(os.environ),
    )
    _log_to(options.home / "logs" / "agent.log")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda signum, frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        run_agent(options, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _log_to(log_file: Path) -> None:
    """The agent's log lines on stderr and in ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("dagship.agent")
    logger.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for handler in (logging.StreamHandler(), logging.FileHandler(log_file, encoding="utf-8")):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
