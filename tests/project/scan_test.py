"""What `dagship deploy` puts in the manifests: ignore rules, secrets, symlinks, modes, git.

Scanning is checked end to end: deploy with the real CLI, read the manifests back over HTTP.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dagship.core.manifest import Manifest
from tests.helpers import Api, Cli, Server, dag_source, git, make_project, sha256, unique, write


def deploy(cli: Cli, api: Api, root: Path, *flags: str) -> tuple[dict[str, Any], ...]:
    name = unique("scan")
    api.create_deployment(name)
    out = cli("deploy", root, "--deployment", name, "--no-parse", "--json", *flags).ok().json()
    return out, api.manifest(out["dags_version"]), api.manifest(out["project_version"])


def test_ignore_rules_and_fixed_exclusions(scan_cli: Cli, scan_api: Api, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    git(root, "init", "-q")
    write(root, ".gitignore", "*.log\nbuild/\n")
    write(root, ".dagshipignore", "notes/\n!keep.log\n")
    write(root, "include/.gitignore", "secret.txt\n")
    files = {
        "app.log": False,
        "keep.log": True,
        "build/out.py": False,
        "notes/todo.md": False,
        "include/secret.txt": False,
        "secret.txt": True,  # the nested rule is scoped
        "include/deep/secret.txt": False,
        "include/data.csv": True,
        ".env": False,
        "include/.env": False,
        "__pycache__/x.cpython-311.pyc": False,
        "include/__pycache__/y.pyc": False,
    }
    for rel in files:
        write(root, rel, f"content of {rel}\n")
    write(root, "dags/scratch.log", "ignored by the root rule\n")
    write(root, "dags/.env", "SECRET=1\n")
    write(root, "dags/__pycache__/dag_0.cpython-311.pyc", b"\x00bytecode")

    _, dags, project = deploy(scan_cli, scan_api, root)

    for rel, deployed in files.items():
        assert (rel in project) is deployed, f"{rel}: expected deployed={deployed}"
    assert not any(p.startswith(".git/") for p in project)
    assert set(dags) == {"dag_0.py", "dag_1.py", "dag_2.py"}
    assert {"requirements.txt", "Dockerfile", "include/helpers.py"} <= set(project)
    assert not any(p.startswith("dags/") for p in project), "dags/ belongs to the DAG bundle"


def test_manifest_entries_match_the_files(scan_cli: Cli, scan_api: Api, project: Path) -> None:
    out, dags, prj = deploy(scan_cli, scan_api, project)
    for rel, item in dags.items():
        data = (project / "dags" / rel).read_bytes()
        assert (item["sha256"], item["size"]) == (sha256(data), len(data))
    for rel, item in prj.items():
        data = (project / rel).read_bytes()
        assert (item["sha256"], item["size"]) == (sha256(data), len(data))
    # The versions are the ones dagship.core.manifest computes from the entries.
    assert Manifest.from_dicts(dags.values()).version == out["dags_version"]
    assert Manifest.from_dicts(prj.values()).version == out["project_version"]
    record = scan_api.get(f"/deploys/{out['id']}").json()
    assert (record["dags_files"], record["project_files"]) == (len(dags), len(prj))


def test_versions_are_stable_across_copies(
    scan_cli: Cli, scan_api: Api, project: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(project, copy)
    os.utime(copy / "dags" / "dag_0.py", (1, 1))  # mtimes do not matter
    one, _, _ = deploy(scan_cli, scan_api, project)
    two, _, _ = deploy(scan_cli, scan_api, copy)
    assert (one["dags_version"], one["project_version"]) == (
        two["dags_version"],
        two["project_version"],
    )


def test_symlink_inside_deploys_its_target_content(
    scan_cli: Cli, scan_api: Api, project: Path
) -> None:
    target = project / "include" / "helpers.py"
    (project / "dags" / "helpers_link.py").symlink_to(Path("..") / "include" / "helpers.py")
    (project / "dags" / "shared").symlink_to(project / "include" / "sql")  # absolute, inside
    _, dags, _ = deploy(scan_cli, scan_api, project)
    assert dags["helpers_link.py"]["sha256"] == sha256(target.read_bytes())
    assert dags["helpers_link.py"]["size"] == target.stat().st_size
    sql = (project / "include" / "sql" / "report.sql").read_bytes()
    assert dags["shared/report.sql"]["sha256"] == sha256(sql)


@pytest.mark.parametrize("where", ["dags/evil.py", "include/evil.txt"])
def test_escaping_symlink_is_an_error_naming_it(
    scan_cli: Cli,
    scan_api: Api,
    scan_server: Server,
    project: Path,
    tmp_path: Path,
    where: str,
) -> None:
    outside = write(tmp_path, "outside/secret.txt", "do not ship\n")
    (project / where).symlink_to(outside)
    name = unique("scan")
    scan_api.create_deployment(name)
    blobs = scan_server.blob_count()
    scan_cli("deploy", project, "--deployment", name).failed(where.rsplit("/", 1)[1], "symlink")
    assert scan_api.deploy_count(name) == 0
    assert scan_server.blob_count() == blobs, "nothing is uploaded for a refused project"


def test_symlink_escaping_through_dotdot_is_an_error(
    scan_cli: Cli, scan_api: Api, project: Path, tmp_path: Path
) -> None:
    write(tmp_path, "sibling.py", "x = 1\n")
    (project / "dags" / "up.py").symlink_to(Path("..") / ".." / "sibling.py")
    name = unique("scan")
    scan_api.create_deployment(name)
    scan_cli("deploy", project, "--deployment", name).failed("up.py")
    assert scan_api.deploy_count(name) == 0


def test_executable_bit_is_recorded(scan_cli: Cli, scan_api: Api, project: Path) -> None:
    script = write(project, "include/run.sh", "#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    _, _, prj = deploy(scan_cli, scan_api, project)
    assert prj["include/run.sh"]["executable"] is True
    assert prj["requirements.txt"]["executable"] is False


def test_git_metadata_is_recorded(scan_cli: Cli, scan_api: Api, project: Path) -> None:
    git(project, "init", "-q", "-b", "feature/x")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Add the report DAG\n\nLonger body.")
    sha = git(project, "rev-parse", "HEAD")
    out, _, _ = deploy(scan_cli, scan_api, project)
    record = scan_api.get(f"/deploys/{out['id']}").json()
    assert record["git_sha"] == sha
    assert record["git_branch"] == "feature/x"
    assert "Ada Author" in record["git_author"]
    assert record["git_message"].startswith("Add the report DAG")


def test_no_git_metadata_outside_a_repository(scan_cli: Cli, scan_api: Api, project: Path) -> None:
    out, _, _ = deploy(scan_cli, scan_api, project)
    record = scan_api.get(f"/deploys/{out['id']}").json()
    assert record["git_sha"] is None and record["git_branch"] is None


def test_project_without_dags_folder_deploys_an_empty_bundle(
    scan_cli: Cli, scan_api: Api, tmp_path: Path
) -> None:
    root = tmp_path / "nodags"
    write(root, "requirements.txt", "x\n")
    write(root, "dagfile.py", dag_source("d"))
    out, dags, prj = deploy(scan_cli, scan_api, root, "--project")
    assert dags == {} or out["kind"] == "project"
    assert "requirements.txt" in prj


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["dags/Report.py", "dags/report.py"], "only in case or Unicode form"),
        (["include/caf\u00e9.csv", "include/cafe\u0301.csv"], "only in case or Unicode form"),
        (["dags/a\nb.py"], "control character"),
        (["include/C:notes.txt"], ""),  # inside a folder "C:" is a plain name: deployed
    ],
)
def test_names_no_checkout_can_hold_are_refused_before_any_upload(
    scan_cli: Cli,
    scan_api: Api,
    scan_server: Server,
    project: Path,
    names: list[str],
    message: str,
) -> None:
    for index, rel in enumerate(names):
        write(project, rel, f"content {index}\n")
    name = unique("scan")
    scan_api.create_deployment(name)
    blobs = scan_server.blob_count()
    result = scan_cli("deploy", project, "--deployment", name, "--no-parse")
    if not message:
        result.ok()
        assert scan_api.deploy_count(name) == 1
        return
    result.failed(message, "rename it or add it to .dagshipignore")
    assert scan_api.deploy_count(name) == 0
    assert scan_server.blob_count() == blobs, "nothing is uploaded for a refused project"
