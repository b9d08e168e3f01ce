"""The agent's home: where it keeps project trees, blobs, logs, its state and Airflow's home.

Layout (``dagship agent run --home DIR``, default ``$DAGSHIP_HOME/agent``)::

    agent-state.json         what the host runs (state.py), written atomically
    projects/<version>/      project trees, one per version, read-only files (project_tree.py)
    cache/blobs/ab/<sha256>  the blobs they are linked from (the bundle's BlobCache)
    tmp/                     trees being built; cleared on start
    airflow/                 AIRFLOW_HOME of the components (database, logs, DAG bundles)
    logs/<component>.log     each component's output, appended across restarts
    logs/agent.log           what the agent did (builds, switches), one line each
    python/dagship           a link to this dagship, so Airflow's environment imports the bundle
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path

import dagship

STATE_FILE = "agent-state.json"


@dataclass(frozen=True)
class AgentHome:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    @property
    def blobs(self) -> Path:
        return self.root / "cache" / "blobs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def airflow_home(self) -> Path:
        return self.root / "airflow"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def agent_log(self) -> Path:
        return self.logs / "agent.log"

    def component_log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def python_path(self) -> Path:
        """A folder holding only a ``dagship`` link: on the components' ``PYTHONPATH`` it makes
        the DAG bundle importable in the project's environment, and nothing else of the
        agent's interpreter."""
        return self.root / "python"

    def prepare(self) -> None:
        """Create the folders and the ``dagship`` link (pointing at this dagship)."""
        for folder in (self.projects, self.blobs, self.tmp, self.airflow_home, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.python_path.mkdir(parents=True, exist_ok=True)
        link = self.python_path / "dagship"
        package = Path(dagship.__file__).resolve().parent
        if link.is_symlink() and link.resolve() == package:
            return
        temporary = self.python_path / ".dagship.new"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(package, target_is_directory=True)
        temporary.replace(link)


def agent_id(home: Path) -> str:
    """The host name plus a short hash of the home: two agents on one host in different homes
    report as two agents, and an agent restarted on the same home as the same one."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host or 'host'}-{digest}"
