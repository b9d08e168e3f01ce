"""Building a project version's environment in a child process the agent can abandon.

The build is ``dagship.environment.build.ensure_environment`` on the version's tree, the very
builder ``dagship parse`` uses, so what passed the parse check in CI is what runs. It runs in
its own process group (``python -m dagship.agent.builder TREE RESULT``) so that a newer version
arriving meanwhile, or a restart after the agent was killed, can end it with its uv children;
the builder's lock and completion marker make a half-built environment harmless.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dagship.agent.errors import AgentError
from dagship.core.errors import DagshipError
from dagship.environment.build import Environment, ensure_environment
from dagship.files import write_atomic


@dataclass
class Build:
    version: str
    process: subprocess.Popen[bytes]
    result_file: Path
    log_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def result(self) -> Environment:
        """The built (or reused) environment; AgentError with the builder's message."""
        self.process.wait()
        try:
            data = json.loads(self.result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            output = self.log_file.read_text(encoding="utf-8", errors="replace").strip()
            raise AgentError(
                f"the environment build of {self.version} stopped with code "
                f"{self.process.returncode}:\n{output[-4000:]}"
            ) from None
        finally:
            self.result_file.unlink(missing_ok=True)
        if "error" in data:
            raise AgentError(str(data["error"]))
        location = data.pop("location")
        return Environment(
            python=Path(data.pop("python")),
            location=Path(location) if location else None,
            **data,
        )

    def abandon(self) -> None:
        """End the build and its uv children (their process group)."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.result_file.unlink(missing_ok=True)


def start_build(tree: Path, version: str, work_dir: Path) -> Build:
    """Start building the environment of the project tree ``tree``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{version}.{int(time.time() * 1000)}"
    result_file = work_dir / f"build-{stamp}.json"
    log_file = work_dir / f"build-{stamp}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagship.agent.builder", str(tree), str(result_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Build(version, process, result_file, log_file)


def _main(tree: str, result_file: str) -> int:
    try:
        environment = ensure_environment(Path(tree))
        data: dict[str, object] = asdict(environment)
        data["python"] = str(environment.python)
        data["location"] = str(environment.location) if environment.location else None
    except DagshipError as exc:
        data = {"error": str(exc)}
    write_atomic(result_file, json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:3]))
