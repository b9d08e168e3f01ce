"""Deploys reaching a real Airflow 3 through the dagship bundle, followed with `--wait`.

One Airflow and one deployment for the module (starting Airflow takes most of a minute):
tests run in file order and each deploys the files it needs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dagship.airflow_api.client import AirflowError
from dagship.core.naming import bundle_name
from tests import helpers
from tests.airflow.conftest import AirflowSetup
from tests.helpers import dag_source, entry, sha256, write

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # DAGs only: this Airflow is not run by `dagship agent`, so a deploy that changed the
    # project would wait for an agent (tests/agent/ covers those).
    return tmp_path_factory.mktemp("af-project")


@pytest.fixture(autouse=True)
def no_broken_file_left(project: Path) -> Iterator[None]:
    """The module's tests share one project: a test that failed before removing the broken
    DAG file it wrote must not fail the tests after it."""
    yield
    (project / "dags" / "broken.py").unlink(missing_ok=True)


def deploy_wait(setup: AirflowSetup, project: Path, *extra: str) -> Any:
    return setup.cli(
        "deploy",
        project,
        "-d",
        setup.deployment,
        "--no-parse",
        "--wait",
        "--timeout",
        "120",
        *extra,
    )


def test_deploy_second_deploy_and_rollback_reach_airflow(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/alpha.py", dag_source("alpha", "# version one\n"))
    first = deploy_wait(setup, project, "--json").ok().json()
    assert "alpha" in first["dags"] and first["import_errors"] == []
    assert first["wait"]["state"] == "parsed"
    assert setup.airflow.dag("alpha")["bundle_version"] == first["dags_version"]

    write(project, "dags/alpha.py", dag_source("alpha", "# version two\n"))
    human = deploy_wait(setup, project).ok()
    assert "Picked up" in human.err or "Parsed by Airflow" in human.err, human.err
    second = setup.api.deploys(setup.deployment)[0]
    assert second["dags_version"] != first["dags_version"]
    assert setup.airflow.dag("alpha")["bundle_version"] == second["dags_version"]
    assert "version two" in setup.airflow.dag_source("alpha")

    rolled = setup.cli("rollback", setup.deployment, "--json").ok().json()
    assert rolled["dags_version"] == first["dags_version"]
    waited = setup.cli("deploys", "wait", rolled["id"], "--timeout", "120", "--json").ok().json()
    assert waited["state"] == "parsed" and "alpha" in waited["dags"]
    assert setup.airflow.dag("alpha")["bundle_version"] == first["dags_version"]
    assert "version one" in setup.airflow.dag_source("alpha")

    # Nothing changed: --wait follows the current deploy and succeeds at once.
    write(project, "dags/alpha.py", dag_source("alpha", "# version one\n"))
    again = deploy_wait(setup, project, "--json").ok().json()
    assert again["unchanged"] is True and again["wait"]["state"] == "parsed"


def test_import_error_fails_the_wait_and_previous_dags_stay(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/alpha.py", dag_source("alpha", "# before the broken one\n"))
    deploy_wait(setup, project).ok()
    write(
        project,
        "dags/broken.py",
        "from airflow.sdk import dag\n\nraise RuntimeError('dagship says boom')\n",
    )
    result = deploy_wait(setup, project)
    # The traceback is the point here (Result.failed() rejects tracebacks in stderr).
    assert result.code == 1, result.err
    for needle in ("--- broken.py", "Traceback", "RuntimeError: dagship says boom"):
        assert needle in result.err, result.err
    seq = setup.api.deploys(setup.deployment)[0]["seq"]
    assert f"dagship rollback {setup.deployment} --to {seq - 1} --wait" in result.err
    as_json = deploy_wait(setup, project, "--json")
    assert as_json.code == 1
    body = as_json.json()
    assert body["unchanged"] is True and body["wait"]["state"] == "failed"
    assert [e["filename"] for e in body["import_errors"]] == ["broken.py"]
    assert "alpha" in body["dags"]
    # The DAGs of the previous version keep running: present, not stale, runnable.
    alpha = setup.airflow.dag("alpha")
    assert alpha["is_stale"] is False
    run = setup.airflow.trigger("alpha")
    assert wait_run(setup, "alpha", run["dag_run_id"]) == "success"

    (project / "dags" / "broken.py").unlink()
    deploy_wait(setup, project).ok()


def test_rollback_on_failure_puts_the_previous_version_back_in_airflow(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/alpha.py", dag_source("alpha", "# the good one\n"))
    good = deploy_wait(setup, project, "--json").ok().json()
    write(project, "dags/broken.py", "from airflow.sdk import dag\n\nraise KeyError('undo me')\n")
    result = deploy_wait(setup, project, "--rollback-on-failure")
    assert result.code == 1, result.err
    bad, back = good["seq"] + 1, good["seq"] + 2
    for needle in (
        "--- broken.py",
        "KeyError: 'undo me'",
        f"Deploy #{bad} failed in Airflow: rolling {setup.deployment} back to deploy "
        f"#{good['seq']}",
        f"Error: deploy #{bad} of {setup.deployment} failed in Airflow (Airflow could not import "
        "broken.py (KeyError: 'undo me'))",
        f"rolled back to the versions of deploy #{good['seq']} with deploy #{back}",
        "which Airflow runs now",
    ):
        assert needle in result.err, result.err

    latest = setup.api.deploys(setup.deployment)[0]
    assert (latest["seq"], latest["origin"]) == (back, "rollback")
    assert latest["dags_version"] == good["dags_version"]
    assert latest["description"] == (
        f"automatic rollback: deploy #{bad} failed in Airflow: Airflow could not import "
        "broken.py (KeyError: 'undo me')"
    )
    assert setup.airflow.dag("alpha")["bundle_version"] == good["dags_version"]

    (project / "dags" / "broken.py").unlink()  # the next test starts from the good version


def test_a_helper_only_fix_is_awaited_in_the_dag_file_that_imports_it(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/alpha.py", dag_source("alpha", "# before the broken one\n"))
    # lib/ holds plain modules (no DAG file to Airflow); reporting.py imports them.
    write(project, "dags/lib/__init__.py", "")
    write(project, "dags/lib/helper.py", "from lib.names import NAME\n")
    write(project, "dags/lib/names.py", "raise RuntimeError('names are broken')\n")
    write(project, "dags/reporting.py", "from lib.helper import NAME\n" + dag_source("reporting"))
    broken = deploy_wait(setup, project, "--json")
    assert broken.code == 1, broken.err
    body = broken.json()
    assert body["wait"]["state"] == "failed"
    assert [e["filename"] for e in body["import_errors"]] == ["reporting.py"]
    assert "names are broken" in body["import_errors"][0]["stack_trace"]

    # The fix changes only a module two imports away: reporting.py's error above is the
    # previous version's, and the wait lasts until Airflow parsed reporting.py again.
    write(project, "dags/lib/names.py", "NAME = 'fixed'\n")
    fixed = deploy_wait(setup, project, "--json")
    assert fixed.code == 0, fixed.err
    body = fixed.json()
    assert body["wait"]["state"] == "parsed" and body["import_errors"] == []
    assert body["wait"]["files"]["importers"] == ["reporting.py"]
    assert "reporting" in body["dags"] and "alpha" in body["dags"]
    assert setup.airflow.dag("reporting")["bundle_version"] == body["dags_version"]
    assert setup.airflow.import_errors(bundle_name(setup.deployment)) == []


def test_a_deploy_that_only_removes_a_dag_file_waits_until_airflow_drops_its_dag(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/alpha.py", dag_source("alpha", "# kept\n"))
    write(project, "dags/gamma.py", dag_source("gamma"))
    deploy_wait(setup, project).ok()
    assert setup.airflow.dag("gamma")["is_stale"] is False

    (project / "dags" / "gamma.py").unlink()
    result = deploy_wait(setup, project, "--json").ok()
    body = result.json()
    assert body["wait"]["state"] == "parsed", body["wait"]
    assert body["wait"]["files"]["removed"] == ["gamma.py"]
    assert body["wait"]["removed_dags"] == ["gamma"]
    # What the wait reported is what Airflow shows the moment it returned.
    assert setup.airflow.dag("gamma")["is_stale"] is True
    assert "gamma" not in bundle_dags(setup) and "alpha" in bundle_dags(setup)
    human = setup.cli("deploys", "wait", setup.deployment, "--timeout", "60").ok()
    assert "removed from Airflow: gamma" in human.err, human.err

    # A DAG file that stops naming a DAG is a removal for Airflow too.
    write(project, "dags/gamma.py", dag_source("gamma"))
    deploy_wait(setup, project).ok()
    write(project, "dags/gamma.py", "GREETING = 'no longer a workflow'\n")
    body = deploy_wait(setup, project, "--json").ok().json()
    assert body["wait"]["removed_dags"] == ["gamma"], body["wait"]
    assert setup.airflow.dag("gamma")["is_stale"] is True
    (project / "dags" / "gamma.py").unlink()


def test_a_dag_file_the_airflowignore_no_longer_excludes_is_awaited_as_a_new_one(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/.airflowignore", "delta.py\n")
    write(project, "dags/delta.py", dag_source("delta"))
    body = deploy_wait(setup, project, "--json").ok().json()
    assert "delta" not in body["dags"]

    (project / "dags" / ".airflowignore").unlink()
    body = deploy_wait(setup, project, "--json").ok().json()
    assert body["wait"]["files"]["expected"] == 1, body["wait"]
    assert "delta" in body["dags"]
    assert setup.airflow.dag("delta")["bundle_version"] == body["dags_version"]

    # Excluded again: its DAG leaves Airflow as if the file were removed.
    write(project, "dags/.airflowignore", "delta.py\n")
    body = deploy_wait(setup, project, "--json").ok().json()
    assert body["wait"]["files"]["removed"] == ["delta.py"]
    assert body["wait"]["removed_dags"] == ["delta"]
    assert setup.airflow.dag("delta")["is_stale"] is True
    (project / "dags" / ".airflowignore").unlink()
    (project / "dags" / "delta.py").unlink()
    deploy_wait(setup, project).ok()


READER = """
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, task


@dag(dag_id="reader", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def reader():
    @task
    def query() -> str:
        return (Path(__file__).parent / "sql" / "report.sql").read_text().strip()

    query()


reader()
"""


def test_a_deploy_that_changes_only_a_file_a_dag_reads_is_live_for_its_next_run(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/reader.py", READER)
    write(project, "dags/sql/report.sql", "select 1\n")
    deploy_wait(setup, project).ok()

    # Only the SQL changes: Airflow pins a new run to the version of the DAG's last parse, so
    # the wait lasts until reader.py, which names the file, is parsed at the new version.
    write(project, "dags/sql/report.sql", "select 2\n")
    body = deploy_wait(setup, project, "--json").ok().json()
    assert body["wait"]["state"] == "parsed", body["wait"]
    assert body["wait"]["files"]["importers"] == ["reader.py"]
    assert setup.airflow.dag("reader")["bundle_version"] == body["dags_version"]
    run = setup.airflow.trigger("reader")
    assert run["bundle_version"] == body["dags_version"]
    assert wait_run(setup, "reader", run["dag_run_id"]) == "success"
    assert setup.airflow.xcom("reader", run["dag_run_id"], "query") == "select 2"


PINNED = """
import time
from datetime import datetime

from airflow.sdk import dag, task

VERSION = "{version}"


@dag(dag_id="pinned", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def pinned():
    @task
    def first(sleep: int = 0) -> str:
        time.sleep(int(sleep))
        return "first-" + VERSION

    @task
    def second(previous: str) -> str:
        return previous + "/second-" + VERSION

    second(first(sleep="{{{{ dag_run.conf.get('sleep', 0) }}}}"))


pinned()
"""


def test_a_run_keeps_its_version_while_new_runs_take_the_new_one(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/pinned.py", PINNED.format(version="v1"))
    deploy_wait(setup, project).ok()
    old_run = setup.airflow.trigger("pinned", conf={"sleep": 20})["dag_run_id"]
    wait_task_running(setup, "pinned", old_run, "first")

    write(project, "dags/pinned.py", PINNED.format(version="v2"))
    deploy_wait(setup, project).ok()
    new_run = setup.airflow.trigger("pinned", conf={"sleep": 0})["dag_run_id"]

    assert wait_run(setup, "pinned", new_run) == "success"
    assert setup.airflow.xcom("pinned", new_run, "second") == "first-v2/second-v2"
    assert wait_run(setup, "pinned", old_run) == "success"
    assert setup.airflow.xcom("pinned", old_run, "second") == "first-v1/second-v1"


# The bundle's warning when a refresh fails and it keeps its tree (docs/bundle.md, Failures).
KEEPING = "keeping version"


def test_server_down_airflow_keeps_the_dags_and_the_next_deploy_arrives(
    airflow_setup: AirflowSetup, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = airflow_setup
    write(project, "dags/steady.py", dag_source("steady", "# before the outage\n"))
    before = deploy_wait(setup, project, "--json").ok().json()
    version = before["dags_version"]
    assert bundle_tree(setup) == dag_files(project)
    dags = bundle_dags(setup)
    assert dags["steady"] == version
    offset = setup.log_file.stat().st_size
    # Freeze the server first so that the bundle's next refresh hangs on it: the crash then
    # fails a refresh in flight, and every later one cannot connect.
    with server_down(setup, monkeypatch, freeze=3):
        warnings = wait_bundle_warnings(setup, offset, 3, lambda line: version in line)
        assert any("cannot reach" in line for line in warnings), warnings
        # Several failed refreshes later Airflow still has every DAG, none stale, at the
        # same version, and the bundle's folder still holds the whole tree.
        assert bundle_tree(setup) == dag_files(project)
        assert_dags_kept(setup, dags, version)
        assert bundle_dags(setup)["steady"] == version

    write(project, "dags/steady.py", dag_source("steady", "# after the outage\n"))
    after = deploy_wait(setup, project, "--json").ok().json()
    assert after["dags_version"] != version
    assert after["wait"]["state"] == "parsed" and "steady" in after["dags"]
    assert setup.airflow.dag("steady")["bundle_version"] == after["dags_version"]
    assert "after the outage" in setup.airflow.dag_source("steady")
    assert bundle_tree(setup) == dag_files(project)


def test_a_dag_run_started_while_the_server_is_down_succeeds(
    airflow_setup: AirflowSetup, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = airflow_setup
    # A version no task has run yet: its worker copy does not exist before the outage.
    write(project, "dags/steady.py", dag_source("steady", "# run during the outage\n"))
    deploy_wait(setup, project).ok()
    with server_down(setup, monkeypatch):
        run = setup.airflow.trigger("steady")["dag_run_id"]
        assert wait_run(setup, "steady", run) == "success"
        assert setup.airflow.xcom("steady", run, "hello") == "hello from steady"


def test_corrupt_blob_on_the_server_airflow_keeps_the_last_good_version(
    airflow_setup: AirflowSetup, project: Path
) -> None:
    setup = airflow_setup
    write(project, "dags/keeper.py", dag_source("keeper", "# the last good version\n"))
    good = deploy_wait(setup, project, "--json").ok().json()
    good_files = dag_files(project)
    assert bundle_tree(setup) == good_files
    dags = bundle_dags(setup)
    assert dags["keeper"] == good["dags_version"]
    offset = setup.log_file.stat().st_size

    # A new DAG file whose stored blob goes bad between upload and commit, so the bundle
    # never sees good bytes. The bad bytes are a valid DAG of the same size: the server
    # streams them and only the bundle's digest check can tell.
    fresh = dag_source("fresh", "# good bytes\n").encode()
    evil = dag_source("fresh", "# evil bytes\n").encode()
    assert len(evil) == len(fresh)
    files = {**good_files, "fresh.py": fresh}
    for data in files.values():
        setup.api.upload(data)
    blob = setup.server.stored_blob_files()[sha256(fresh)]
    os.chmod(blob, 0o644)
    blob.write_bytes(evil)
    manifest = [entry(path, data) for path, data in sorted(files.items())]
    response = setup.api.post(
        f"/deployments/{setup.deployment}/deploys",
        json={"kind": "dags", "origin": "cli", "dags_manifest": manifest},
    )
    assert response.status_code == 201, response.text
    bad_version = response.json()["dags_version"]
    assert bad_version != good["dags_version"]

    warnings = wait_bundle_warnings(
        setup, offset, 3, lambda line: sha256(fresh) in line and "fresh.py" in line
    )
    assert all(good["dags_version"] in line for line in warnings), warnings
    assert bundle_tree(setup) == good_files
    assert_dags_kept(setup, dags, good["dags_version"])
    with pytest.raises(AirflowError, match="404"):
        setup.airflow.dag("fresh")
    run = setup.airflow.trigger("keeper")["dag_run_id"]
    assert wait_run(setup, "keeper", run) == "success"

    # Repaired by a newer deploy (a re-deploy of the same file would upload nothing: the
    # server believes it has that blob).
    write(project, "dags/fresh.py", dag_source("fresh", "# repaired\n"))
    repaired = deploy_wait(setup, project, "--json").ok().json()
    assert repaired["dags_version"] not in (good["dags_version"], bad_version)
    assert "fresh" in repaired["dags"] and repaired["import_errors"] == []
    assert setup.airflow.dag("fresh")["bundle_version"] == repaired["dags_version"]
    assert "repaired" in setup.airflow.dag_source("fresh")
    assert bundle_tree(setup) == dag_files(project)


@contextlib.contextmanager
def server_down(
    setup: AirflowSetup, monkeypatch: pytest.MonkeyPatch, freeze: float = 0
) -> Iterator[None]:
    """Crash the dagship server (SIGKILL, after ``freeze`` seconds stopped with SIGSTOP) and
    start it again afterwards on the same address, which is in Airflow's bundle config."""
    port = setup.server.port
    monkeypatch.setattr(helpers, "free_port", lambda: port)
    assert setup.server.proc is not None
    try:
        if freeze:
            os.kill(setup.server.proc.pid, signal.SIGSTOP)
            time.sleep(freeze)
        setup.server.kill()
        yield
    finally:
        setup.server.kill()
        setup.server.start()
    assert setup.server.port == port


def bundle_dags(setup: AirflowSetup) -> dict[str, str | None]:
    """``{dag_id: bundle_version}`` of the deployment's DAGs that are not stale."""
    bundle = bundle_name(setup.deployment)
    return {dag["dag_id"]: dag["bundle_version"] for dag in setup.airflow.dags(bundle)}


def assert_dags_kept(setup: AirflowSetup, before: dict[str, str | None], version: str) -> None:
    """The same DAGs as ``before``, none stale, none at a version other than ``version``.

    A DAG whose file a deploy left unchanged keeps the bundle version of its last parse until
    Airflow parses it again, which it may do from the kept tree (then at ``version``).
    """
    now = bundle_dags(setup)
    assert now.keys() == before.keys(), (before, now)
    for dag_id, was in before.items():
        assert now[dag_id] in (was, version), (dag_id, was, now[dag_id], version)


def dag_files(project: Path) -> dict[str, bytes]:
    """The project's DAG bundle as deployed: paths relative to dags/."""
    root = project / "dags"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def bundle_tree(setup: AirflowSetup) -> dict[str, bytes]:
    """What the DAG processor reads: the files under the bundle's `current` link."""
    bundle_dir = setup.airflow_home / "dag_bundles" / bundle_name(setup.deployment)
    root = (bundle_dir / "current").resolve(strict=True)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        # Parsing may leave bytecode next to the files.
        if p.is_file() and "__pycache__" not in p.parts
    }


def wait_bundle_warnings(
    setup: AirflowSetup,
    offset: int,
    count: int,
    match: Callable[[str], bool],
    timeout: float = 60,
) -> list[str]:
    """The bundle's "keeping version" warnings in Airflow's log after ``offset``, once there
    are ``count`` of them; each must satisfy ``match``."""
    deadline = time.monotonic() + timeout
    while True:
        with setup.log_file.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if KEEPING in line]
        if len(lines) >= count:
            bad = [line for line in lines if not match(line)]
            assert not bad, bad
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(lines)} of {count} bundle warnings in {setup.log_file} within "
                f"{timeout}s:\n" + text[-3000:]
            )
        time.sleep(0.5)


def wait_run(setup: AirflowSetup, dag_id: str, run_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = str(setup.airflow.dag_run(dag_id, run_id)["state"])
        if state in ("success", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(1)


def wait_task_running(
    setup: AirflowSetup, dag_id: str, run_id: str, task_id: str, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in setup.airflow.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["state"] == "running":
                return
        time.sleep(0.5)
    raise AssertionError(f"{dag_id}.{task_id} of {run_id} did not start within {timeout}s")
