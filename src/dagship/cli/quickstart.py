"""``dagship quickstart``: a local server and Airflow, an example project and its first deploy."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli.common import JsonOption, err, out, plural, show
from dagship.cli.progress import UploadBar

if TYPE_CHECKING:
    from dagship.local.quickstart import QuickstartResult

LOCAL_DEPLOYMENT = "local"


def quickstart_command(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Project folder; an example project is written if it has no dags/. Default: here.",
            show_default=False,
        ),
    ] = Path("."),
    port: Annotated[int, typer.Option("--port", help="Port of the local server.")] = 8787,
    airflow: Annotated[
        bool,
        typer.Option(
            "--airflow/--no-airflow",
            help="Also run a local Airflow (`dagship agent run`: `airflow standalone` from the "
            "deployed project, home in $DAGSHIP_HOME/agent) that runs deployment `local`.",
        ),
    ] = True,
    airflow_port: Annotated[
        int, typer.Option("--airflow-port", help="Port of the local Airflow (UI and API).")
    ] = 8080,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Leave the server and Airflow running in the background and exit (pids in "
            "$DAGSHIP_HOME/server.pid and $DAGSHIP_HOME/airflow.pid).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Try dagship on this machine: start a local server (data in $DAGSHIP_HOME, default
    ~/.dagship) and a local Airflow wired to it, scaffold an example Airflow project, create
    deployment `local`, deploy to it and wait until Airflow has parsed it. Runs until Ctrl-C
    (which stops everything it started) unless --detach; re-running reuses the server and
    Airflow already running."""
    from dagship.local.quickstart import quickstart
    from dagship.local.server import write_pid_file

    stop = threading.Event()
    with _stop_on_signals(stop) as serving, UploadBar(enabled=not json) as bar:
        result = quickstart(
            directory,
            port,
            on_progress=bar,
            with_airflow=airflow,
            airflow_port=airflow_port,
            on_step=None if json else (lambda message: err.print(f"{message}…", style="dim")),
        )
        # The pid file is written in the foreground too (other terminals and scripts find the
        # server by it); a foreground run removes it when it stops the server it started.
        pid_file = write_pid_file(result.server)
        show(
            {**result.to_dict(), "pid_file": str(pid_file) if pid_file else None},
            lambda: render(result, pid_file, detach),
            json,
        )
        if not detach:
            serving.set()
            _serve(result, stop, pid_file, json)


def _serve(
    result: QuickstartResult, stop: threading.Event, pid_file: Path | None, json: bool
) -> None:
    """Run until Ctrl-C, then stop what quickstart started and drop the server's pid file."""
    from dagship.local.quickstart import serve_until_stopped

    try:
        code = serve_until_stopped(result, stop, None if json else err.print)
    finally:
        if pid_file is not None and result.server.started:
            pid_file.unlink(missing_ok=True)
    if code:
        raise typer.Exit(code)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM: while starting, interrupt (what was started is stopped again);
    once the yielded ``serving`` event is set, set ``stop`` so everything stops in order."""
    serving = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set() or not serving.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield serving
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def render(result: QuickstartResult, pid_file: Path | None, detach: bool) -> None:
    server = result.server
    deploy = result.deploy
    state = f"started (pid {server.pid})" if server.started else "already running"
    out.print(f"dagship server {state} at {server.url}")
    out.print(f"  data and logs in {server.home}; admin token in {server.token_file}")
    if result.token:
        out.print(f"  token: {result.token}")
    if result.scaffolded:
        out.print(
            f"Wrote an example project to {result.project_dir} "
            f"({plural(len(result.scaffolded), 'file')})."
        )
    if result.created_deployment:
        out.print(f"Created deployment {LOCAL_DEPLOYMENT}.")
    if deploy.unchanged:
        out.print(f"Deployment {LOCAL_DEPLOYMENT} is unchanged (deploy #{deploy.seq}).")
    else:
        out.print(
            f"Deployed {result.project_dir} to {LOCAL_DEPLOYMENT}: deploy #{deploy.seq} "
            f"({deploy.id}), {plural(deploy.deploy.dags_files, 'DAG file')}, "
            f"{plural(deploy.deploy.project_files, 'project file')}; "
            f"uploaded {plural(deploy.uploaded_files, 'file')}."
        )
    airflow = result.airflow
    if airflow is not None:
        state = f"started (pid {airflow.pid})" if airflow.started else "already running"
        out.print(f"\nAirflow {state}: {airflow.url}")
        if airflow.password:
            out.print(f"  login: {airflow.username} / {airflow.password}")
        else:
            out.print(f"  login: see {airflow.home}/simple_auth_manager_passwords.json.generated")
        out.print(f"  home and logs in {airflow.home}; DAG bundle {airflow.bundle_name}")
        if airflow.dags is not None:
            out.print(
                f"  parsed {plural(len(airflow.dags), 'DAG')} at {deploy.dags_version[:19]}…: "
                + (", ".join(airflow.dags) or "-")
            )
        for error in airflow.import_errors or []:
            err.print(f"import error in {error['filename']}:", style="red")
            err.print(error["stack_trace"])
    elif result.airflow_skipped:
        err.print(f"No local Airflow: {result.airflow_skipped}.", style="yellow")
    out.print("\nNext (in another terminal):")
    out.print(f"  export DAGSHIP_URL={server.url} DAGSHIP_HOME={server.home}")
    cli = _cli_command()
    out.print(f"  {cli} deploys list {LOCAL_DEPLOYMENT}")
    out.print(f"  {cli} deploy {result.project_dir} --deployment {LOCAL_DEPLOYMENT} --wait")
    started = server.started or (airflow is not None and airflow.started)
    if detach and started:
        stops = [f"kill $(cat {pid_file})"] if pid_file else []
        if airflow is not None and airflow.started:
            # Airflow's pid is its process group id: `kill -- -PGID` stops all its processes.
            stops.append(f"kill -- -$(cat {airflow.pid_file})")
        out.print(f"\nRunning in the background: stop with `{'; '.join(stops)}`.")
    elif started:
        out.print("\nServing; press Ctrl-C to stop everything quickstart started.")


def _cli_command() -> str:
    """How to run this dagship from another terminal: ``dagship`` when that is the one on
    PATH, else the full path of this environment's (e.g. an unactivated ``.venv``)."""
    here = Path(sys.executable).parent / "dagship"
    on_path = shutil.which("dagship")
    if on_path and here.exists() and Path(on_path).resolve() == here.resolve():
        return "dagship"
    return shlex.quote(str(here)) if here.exists() else "dagship"
