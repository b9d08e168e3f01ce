"""``dagship quickstart``: a local server, an example project and its first deploy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dagship.cli.common import JsonOption, out, plural, print_json
from dagship.cli.progress import UploadBar

if TYPE_CHECKING:
    from dagship.client.quickstart import QuickstartResult

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
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Leave the server running in the background and exit "
            "(its pid goes to $DAGSHIP_HOME/server.pid).",
        ),
    ] = False,
    json: JsonOption = False,
) -> None:
    """Try dagship on this machine: start a local server (data in $DAGSHIP_HOME, default
    ~/.dagship), scaffold an example Airflow project, create deployment `local` and deploy
    to it. Runs until Ctrl-C unless --detach; reuses a server already answering on --port."""
    from dagship.client.local import serve_until_stopped, write_pid_file
    from dagship.client.quickstart import quickstart

    with UploadBar(enabled=not json) as bar:
        result = quickstart(directory, port, on_progress=bar)
    pid_file = write_pid_file(result.server) if detach else None
    if json:
        print_json({**result.to_dict(), "pid_file": str(pid_file) if pid_file else None})
    else:
        render(result, pid_file, detach)
    if not detach:
        code = serve_until_stopped(result.server)
        if code:
            raise typer.Exit(code)


def render(result: QuickstartResult, pid_file: Path | None, detach: bool) -> None:
    server = result.server
    deploy = result.deploy
    state = f"started (pid {server.pid})" if server.started else "already running"
    out.print(f"dagship server {state} at {server.url}")
    out.print(f"  data and logs in {server.home}; admin token in {server.token_file}")
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
            f"({deploy.id}), {plural(int(deploy.deploy.get('dags_files') or 0), 'DAG file')}, "
            f"{plural(int(deploy.deploy.get('project_files') or 0), 'project file')}; "
            f"uploaded {plural(deploy.uploaded_files, 'file')}."
        )
    out.print("\nNext:")
    out.print(f"  export DAGSHIP_URL={server.url}")
    out.print(f"  dagship deploys list {LOCAL_DEPLOYMENT}")
    out.print(f"  dagship deploy {result.project_dir} --deployment {LOCAL_DEPLOYMENT}")
    if detach and server.started:
        out.print(
            f"\nThe server keeps running in the background: stop it with `kill $(cat {pid_file})`."
        )
    elif server.started:
        out.print("\nServing; press Ctrl-C to stop the server.")
