"""``dagship migrate-check``: every change a project written for Airflow 2 needs for Airflow 3,
in one run, with the file and line of each.

The check reads the code, it does not run it: no Airflow is needed, so it works for projects
that still deploy to Airflow 2 (Astro Runtime 12). It reads the Python files of ``dags/``,
``include/``, ``plugins/``, ``tests/`` and the project root (validate/upgrade_scan.py finds
moved or removed imports, removed DAG and operator arguments, removed context keys, plugin
attributes Airflow ignores) and the template files next to them (``.sql``, ``.sh``, Jinja), in
which it looks for removed template variables. What it knows is the table of
validate/airflow2.py.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagship.validate.errors import ValidateError
from dagship.validate.upgrade_scan import Finding, scan_python, scan_template

FOLDERS = ("dags", "include", "plugins", "tests")
TEMPLATE_SUFFIXES = frozenset({".sql", ".hql", ".sh", ".j2", ".jinja", ".jinja2"})
_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})


@dataclass
class MigrateReport:
    project: str
    files: int  # files read
    findings: list[Finding] = field(default_factory=list)

    @property
    def needed(self) -> int:
        """Changes without which the code fails on Airflow 3."""
        return sum(1 for finding in self.findings if finding.required)

    @property
    def suggested(self) -> int:
        """Deprecated uses that still work on Airflow 3."""
        return len(self.findings) - self.needed

    @property
    def ok(self) -> bool:
        return self.needed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "ok": self.ok,
            "files": self.files,
            "needed": self.needed,
            "suggested": self.suggested,
            "findings": [asdict(finding) for finding in self.findings],
        }


def check_project(project: Path) -> MigrateReport:
    """Read the project's code and list the changes Airflow 3 needs, in file and line order."""
    project = Path(project).resolve()
    if not (project / "dags").is_dir():
        raise ValidateError(
            f"{project} has no dags/ folder: run `dagship migrate-check` on an Airflow project"
        )
    files = project_files(project)
    findings: list[Finding] = []
    for path in files:
        relative = path.relative_to(project).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".py":
            findings.extend(scan_python(text, relative))
        else:
            findings.extend(scan_template(text, relative))
    findings.sort(key=lambda f: (f.path, f.line))
    return MigrateReport(str(project), len(files), findings)


def project_files(project: Path) -> list[Path]:
    """The project's top-level ``.py`` files and the Python and template files of its code
    folders, hidden folders, caches and virtual environments left out."""
    found = sorted(p for p in project.glob("*.py") if p.is_file())
    for folder in FOLDERS:
        for root, dirs, names in os.walk(project / folder):
            dirs[:] = sorted(d for d in dirs if not _skipped(d))
            for name in sorted(names):
                path = Path(root) / name
                if path.suffix == ".py" or path.suffix in TEMPLATE_SUFFIXES:
                    found.append(path)
    return found


def _skipped(folder: str) -> bool:
    return folder.startswith(".") or folder in _SKIPPED_FOLDERS
