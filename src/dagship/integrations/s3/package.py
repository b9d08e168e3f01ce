"""`dagship s3 lambda-package`: a zip of the Lambda handler with only what it imports.

The zip holds the parts of dagship the handler uses (core, client, files, the ignore rules and
this package) and their third-party dependencies, copied from the running environment; boto3
comes with AWS's Python runtimes and is left out. No server, no CLI, no Airflow.
"""

from __future__ import annotations

import platform
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import dagship

# What the handler imports, as paths under the dagship package.
DAGSHIP_PARTS = (
    "__init__.py",
    "files.py",
    "core",
    "client",
    "project/__init__.py",
    "project/ignore.py",
    "integrations/__init__.py",
    "integrations/s3",
)
# The handler's third-party dependencies (and theirs), by distribution name.
DISTRIBUTIONS = (
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "sniffio",
    "idna",
    "certifi",
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "typing-inspection",
    "annotated-types",
    "pathspec",
)
HANDLER = "dagship.integrations.s3.lambda_handler"


@dataclass(frozen=True)
class LambdaPackage:
    path: Path
    files: int
    size: int
    python: str
    machine: str

    @property
    def runtime(self) -> str:
        """The Lambda runtime and architecture the compiled parts (pydantic-core) fit."""
        arch = "arm64" if self.machine in ("aarch64", "arm64") else "x86_64"
        return f"python{self.python} on {arch}"

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "files": self.files,
            "size": self.size,
            "handler": HANDLER,
            "runtime": self.runtime,
        }


def write_lambda_package(out: Path) -> LambdaPackage:
    """Write the zip to ``out`` (replacing it) and say what it holds."""
    root = Path(dagship.__file__).parent
    entries: dict[str, Path] = {}
    for part in DAGSHIP_PARTS:
        source = root / part
        found = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for path in found:
            entries["dagship/" + path.relative_to(root).as_posix()] = path
    for name in DISTRIBUTIONS:
        entries.update(_distribution_files(name))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(entries.items()):
            archive.write(path, name)
    tmp.replace(out)
    return LambdaPackage(
        out,
        len(entries),
        out.stat().st_size,
        f"{sys.version_info.major}.{sys.version_info.minor}",
        platform.machine(),
    )


def _distribution_files(name: str) -> dict[str, Path]:
    dist = metadata.distribution(name)
    files = {}
    for file in dist.files or []:
        text = str(file)
        if "__pycache__" in text or text.startswith("..") or ".dist-info/" in text:
            continue
        path = Path(str(file.locate()))
        if path.is_file():
            files[file.as_posix()] = path
    return files
