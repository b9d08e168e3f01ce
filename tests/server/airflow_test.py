"""Following a deploy in Airflow (services/airflow.py) against a stand-in for Airflow's REST API.

The end-to-end tests run a real Airflow, which takes minutes and cannot stage the timing cases
(a file that defines no DAG, a slow DAG processor, a newer deploy). Here ``FakeAirflow`` plays the
endpoints the server reads, with the shapes of Airflow 3's REST API v2, through
``httpx.MockTransport`` under the real ``AirflowClient``.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dagship.server.services.airflow import AirflowFollower, _observe, _Plan
from dagship.server.services.airflow_access import Target
from dagship.server.settings import AirflowAuth

URL = "http://airflow.test"
BUNDLE = "dagship-dev"
OLD, NEW = "sha256-" + "1" * 64, "sha256-" + "2" * 64
# Small, so the waits are short; large enough that one look at Airflow never takes as long.
SETTLE = 0.2
# Airflow's default [api] maximum_page_limit.
PAGE_LIMIT = 100


@dataclass
class FakeAirflow:
    """The parts of Airflow's REST API v2 the server uses, with Airflow's shapes and paging."""

    dags: list[dict[str, Any]] = field(default_factory=list)
    import_errors: list[dict[str, Any]] = field(default_factory=list)
    # Files whose parse was asked for (PUT /parseDagFile/{file_token}), in order.
    reparsed: list[str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def add_dag(self, dag_id: str, path: str, version: str) -> None:
        """Airflow parsed ``path`` at bundle ``version`` and found ``dag_id`` (the newest wins)."""
        self.dags = [dag for dag in self.dags if dag["dag_id"] != dag_id]
        self.dags.append(
            {
                "dag_id": dag_id,
                "relative_fileloc": path,
                "fileloc": f"/bundles/{BUNDLE}/{version}/{path}",
                "bundle_name": BUNDLE,
                "bundle_version": version,
                "is_stale": False,
            }
        )

    def drop_file(self, path: str) -> None:
        """Airflow listed a version without ``path``: its DAGs are marked stale."""
        for dag in self.dags:
            if dag["relative_fileloc"] == path:
                dag["is_stale"] = True

    def dag_lookups(self) -> int:
        """How many DAGs were asked for by id (GET /api/v2/dags/{dag_id})."""
        return sum(1 for r in self.requests if r.url.path.startswith("/api/v2/dags/")
                   and r.url.path.count("/") == 4)  # fmt: skip

    def add_error(self, path: str, at: datetime, trace: str = "Traceback: boom") -> None:
        self.import_errors.append(
            {
                "import_error_id": len(self.import_errors) + 1,
                "timestamp": at.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
                "filename": path,
                "bundle_name": BUNDLE,
                "stack_trace": trace,
            }
        )

    def listings(self) -> int:
        """How many pages of the bundle's DAGs (without a version filter) were read."""
        return sum(
            1
            for r in self.requests
            if r.url.path == "/api/v2/dags" and "bundle_version" not in r.url.params
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, params = request.url.path, request.url.params
        if request.method == "GET" and path == "/api/v2/dags":
            found = [
                dag
                for dag in self.dags
                if not dag["is_stale"]
                and all(dag[key] == params[key] for key in ("bundle_name", "bundle_version")
                        if key in params)
            ]  # fmt: skip
            return _page(found, "dags", params)
        if request.method == "GET" and path.startswith("/api/v2/dags/") and path.count("/") == 4:
            dag_id = path.removeprefix("/api/v2/dags/")
            for dag in self.dags:
                if dag["dag_id"] == dag_id:
                    return httpx.Response(200, json=dag)
            return httpx.Response(
                404, json={"detail": f"The Dag with ID: `{dag_id}` was not found"}
            )
        if request.method == "GET" and path == "/api/v2/importErrors":
            found = [e for e in self.import_errors if e["bundle_name"] == params["bundle_name"]]
            return _page(found, "import_errors", params)
        if request.method == "GET" and path.endswith("/details"):
            dag_id = path.removeprefix("/api/v2/dags/").removesuffix("/details")
            for dag in self.dags:
                if dag["dag_id"] == dag_id:
                    return httpx.Response(200, json={**dag, "file_token": _token(dag)})
            return httpx.Response(
                404, json={"detail": f"The Dag with ID: `{dag_id}` was not found"}
            )
        if request.method == "PUT" and path.startswith("/api/v2/parseDagFile/"):
            token = path.removeprefix("/api/v2/parseDagFile/")
            self.reparsed.append(json.loads(base64.urlsafe_b64decode(token))["relative_fileloc"])
            return httpx.Response(201, json=None)
        return httpx.Response(404, json={"detail": "Not Found"})


def _page(items: list[dict[str, Any]], key: str, params: httpx.QueryParams) -> httpx.Response:
    offset = int(params.get("offset", 0))
    limit = min(int(params.get("limit", 50)), PAGE_LIMIT)
    body = {key: items[offset : offset + limit], "total_entries": len(items)}
    return httpx.Response(200, json=body)


def _token(dag: dict[str, Any]) -> str:
    payload = {"bundle_name": dag["bundle_name"], "relative_fileloc": dag["relative_fileloc"]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.fixture
def airflow() -> FakeAirflow:
    return FakeAirflow()


@pytest.fixture
def follower(airflow: FakeAirflow) -> AirflowFollower:
    return AirflowFollower(
        AirflowAuth(), settle_seconds=SETTLE, transport=httpx.MockTransport(airflow)
    )


def plan(
    files: dict[str, str],
    before: dict[str, str],
    changed: tuple[str, ...],
    *,
    importers: tuple[str, ...] = (),
    defines: tuple[str, ...] = (),
    current: bool = True,
    created_at: datetime | None = None,
    removed: tuple[str, ...] = (),
) -> _Plan:
    """Deploy #2 of ``dev``: DAG version NEW with ``files`` (path -> sha256), after ``before``."""
    return _Plan(
        deploy_id="dpl_0000000000000002",
        seq=2,
        deployment="dev",
        version=NEW,
        created_at=created_at or _now(),
        airflow_url=URL,
        bundle_name=BUNDLE,
        current=current,
        paths=frozenset(files),
        digests=files,
        before=before,
        changed=changed,
        importers=importers,
        defines=frozenset(defines),
        target=Target(URL, AirflowAuth()),
        removed=removed,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_waits_until_airflow_shows_the_version(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("etl", "etl.py", OLD)
    deploy = plan({"etl.py": "b"}, {"etl.py": "a"}, ("etl.py",), defines=("etl.py",))
    status = _observe(deploy, follower)
    assert (status.state, status.done, status.reachable) == ("waiting", False, True)
    assert status.files.pending == ["etl.py"] and status.files.parsed == 0
    assert NEW in status.detail
    # Nothing is asked of Airflow before it has the version: the bundle refresh brings it.
    assert airflow.reparsed == [] and status.reparse_requested == []


def test_picked_up_asks_a_reparse_once_then_parsed(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("etl", "etl.py", OLD)
    airflow.add_dag("report", "report.py", OLD)
    airflow.add_dag("kept", "kept.py", OLD)
    files = {"etl.py": "e2", "report.py": "r2", "new.py": "n1", "kept.py": "k1"}
    before = {"etl.py": "e1", "report.py": "r1", "kept.py": "k1"}
    deploy = plan(files, before, ("etl.py", "new.py", "report.py"), defines=("etl.py",))

    # The new file is parsed first: the version is picked up, the changed files are not yet.
    airflow.add_dag("fresh", "new.py", NEW)
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and not status.done
    assert (status.files.expected, status.files.parsed) == (3, 1)
    assert status.files.pending == ["etl.py", "report.py"]
    # Files that had DAGs get a reparse request (by their DAG's file token), once.
    assert airflow.reparsed == ["etl.py", "report.py"]
    assert status.reparse_requested == ["etl.py", "report.py"]

    airflow.add_dag("etl", "etl.py", NEW)
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["report.py"]
    airflow.add_dag("report", "report.py", NEW)
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("parsed", True)
    assert status.files.pending == [] and status.files.parsed == 3
    # The version's DAGs: those parsed at it and those of its unchanged files.
    assert status.dags == ["etl", "fresh", "kept", "report"]
    assert status.import_errors == []
    assert airflow.reparsed == ["etl.py", "report.py"], "a reparse is asked once per deploy"
    assert status.reparse_requested == ["etl.py", "report.py"]


def test_a_changed_file_that_defines_no_dag_counts_as_parsed_after_the_settle_time(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    # helpers.py mentions airflow and dag, so Airflow parses it, but it builds no DAG.
    files = {"etl.py": "e1", "helpers.py": "h1"}
    deploy = plan(files, {}, ("etl.py", "helpers.py"), defines=("etl.py",))
    airflow.add_dag("etl", "etl.py", NEW)
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["helpers.py"]
    time.sleep(SETTLE * 1.5)
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("parsed", True)
    assert status.files.pending == [] and status.files.parsed == 2
    assert status.dags == ["etl"]


def test_a_file_that_seems_to_build_a_dag_is_given_longer(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    # factory.py calls DAG(...) but Airflow shows no DAG for it: a busy DAG processor may not
    # have reached it, or it is a factory that defines none. Only the longer patience tells.
    files = {"etl.py": "e1", "factory.py": "f1"}
    deploy = plan(files, {}, ("etl.py", "factory.py"), defines=("etl.py", "factory.py"))
    airflow.add_dag("etl", "etl.py", NEW)
    assert _observe(deploy, follower).state == "picked_up"
    time.sleep(SETTLE * 1.5)
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["factory.py"]
    time.sleep(SETTLE * 12)
    status = _observe(deploy, follower)
    assert status.state == "parsed" and status.files.pending == []


def test_a_file_with_dags_at_an_older_version_is_awaited_past_the_settle_time(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    # etl.py has a DAG (at the old version): it defines one, so Airflow has simply not parsed
    # the new content yet, however long that takes.
    airflow.add_dag("etl", "etl.py", OLD)
    files = {"etl.py": "e2", "new.py": "n1"}
    deploy = plan(files, {"etl.py": "e1"}, ("etl.py", "new.py"))
    airflow.add_dag("fresh", "new.py", NEW)
    _observe(deploy, follower)
    time.sleep(SETTLE * 1.5)
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["etl.py"]


def test_a_deploy_no_longer_current_is_superseded(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    deploy = plan({"etl.py": "e2"}, {"etl.py": "e1"}, ("etl.py",), current=False)
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("superseded", True)
    assert "#2" in status.detail and "dev" in status.detail
    # The API's words: the CLI adds its commands (cli/hints.py).
    assert "dagship" not in status.detail
    # A superseded deploy that Airflow did parse is still reported as parsed.
    airflow.add_dag("etl", "etl.py", NEW)
    assert _observe(deploy, follower).state == "parsed"


def test_import_errors_recorded_after_the_deploy_fail_it_older_ones_do_not(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    deployed_at = _now()
    long_ago = deployed_at - timedelta(hours=1)
    airflow.add_dag("etl", "etl.py", OLD)
    files = {"etl.py": "e2", "broken.py": "b2", "old_broken.py": "o1"}
    before = {"etl.py": "e1", "broken.py": "b1", "old_broken.py": "o1"}
    deploy = plan(files, before, ("broken.py", "etl.py"), created_at=deployed_at)
    # About broken.py's previous content, and about a file the version no longer has.
    airflow.add_error("broken.py", long_ago, "Traceback: the old content")
    airflow.add_error("gone.py", long_ago)
    # An unchanged file keeps its import error: it is the same content.
    airflow.add_error("old_broken.py", long_ago, "Traceback: still broken")
    status = _observe(deploy, follower)
    assert status.state == "waiting", "a stale import error is not a pick-up"
    assert status.files.pending == ["broken.py", "etl.py"]

    airflow.add_error("broken.py", deployed_at + timedelta(seconds=1), "Traceback: new content")
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["etl.py"]
    airflow.add_dag("etl", "etl.py", NEW)
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("failed", True)
    assert [(e.filename, e.stack_trace) for e in status.import_errors] == [
        ("broken.py", "Traceback: new content"),
        ("old_broken.py", "Traceback: still broken"),
    ]
    assert status.dags == ["etl"]


def test_a_helper_only_deploy_awaits_the_importers_and_ignores_their_stale_errors(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    # The previous deploy's helpers.py broke etl.py; this one fixes helpers.py only (a module
    # that is no DAG file), so etl.py is awaited as an importer.
    deployed_at = _now()
    airflow.add_error("etl.py", deployed_at - timedelta(seconds=5), "Traceback: old helper")
    airflow.add_error("other.py", deployed_at - timedelta(hours=1), "Traceback: unrelated")
    files = {"etl.py": "e1", "helpers.py": "h2", "other.py": "o1"}
    before = {"etl.py": "e1", "helpers.py": "h1", "other.py": "o1"}
    deploy = plan(
        files, before, (), importers=("etl.py",), defines=("etl.py",), created_at=deployed_at
    )
    status = _observe(deploy, follower)
    assert status.state == "waiting", "the previous deploy's import error is no pick-up"
    assert status.files.pending == ["etl.py"] and status.files.importers == ["etl.py"]
    assert [e.filename for e in status.import_errors] == ["other.py"]

    # Airflow parses etl.py with the new helper: its DAG is at the version, its error gone.
    airflow.import_errors = [e for e in airflow.import_errors if e["filename"] != "etl.py"]
    airflow.add_dag("etl", "etl.py", NEW)
    status = _observe(deploy, follower)
    assert (status.state, status.files.parsed, status.files.expected) == ("failed", 1, 1)
    assert [e.filename for e in status.import_errors] == ["other.py"], "unchanged, still counts"
    assert status.dags == ["etl"]


def test_an_importer_that_still_fails_fails_the_deploy_with_its_new_error(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    deployed_at = _now()
    airflow.add_dag("report", "report.py", OLD)
    airflow.add_error("etl.py", deployed_at - timedelta(seconds=5), "Traceback: old helper")
    files = {"etl.py": "e1", "helpers.py": "h3", "report.py": "r1"}
    before = {"etl.py": "e1", "helpers.py": "h2", "report.py": "r1"}
    deploy = plan(files, before, (), importers=("etl.py", "report.py"), created_at=deployed_at)
    airflow.import_errors = []
    airflow.add_error("etl.py", deployed_at + timedelta(seconds=1), "Traceback: new helper")
    status = _observe(deploy, follower)
    assert status.state == "picked_up" and status.files.pending == ["report.py"]
    # An importer that has DAGs is asked to parse again (by its DAG's file token).
    assert airflow.reparsed == ["report.py"] and status.reparse_requested == ["report.py"]
    assert "import a changed module" in status.detail
    airflow.add_dag("report", "report.py", NEW)
    status = _observe(deploy, follower)
    assert status.state == "failed"
    assert [(e.filename, e.stack_trace) for e in status.import_errors] == [
        ("etl.py", "Traceback: new helper")
    ]


def test_no_changed_dag_file_is_parsed_at_once_with_every_dag_of_the_bundle(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    # A DAG factory with more DAGs than one page of Airflow's API holds.
    for i in range(PAGE_LIMIT + 50):
        airflow.add_dag(f"made_{i:03}", "factory.py", OLD)
    airflow.add_dag("etl", "etl.py", OLD)
    files = {"factory.py": "f1", "etl.py": "e1", "README.md": "r2"}
    deploy = plan(files, {"factory.py": "f1", "etl.py": "e1", "README.md": "r1"}, ())
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("parsed", True)
    assert len(status.dags) == PAGE_LIMIT + 51 and "etl" in status.dags
    assert "nothing new to parse" in status.detail
    assert airflow.listings() == 2, "two pages of the bundle's DAGs"
    # What Airflow showed for each file content is remembered: no second listing.
    again = plan(files, files, (), created_at=_now())
    assert _observe(again, follower).dags == status.dags
    assert airflow.listings() == 2


def test_a_removal_is_live_once_airflow_no_longer_lists_the_removed_files_dags(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("etl", "etl.py", OLD)
    airflow.add_dag("old_a", "old.py", OLD)
    airflow.add_dag("old_b", "old.py", OLD)
    deploy = plan({"etl.py": "e1"}, {"etl.py": "e1", "old.py": "o1"}, (), removed=("old.py",))
    # Nothing to parse, but Airflow still runs the previous version: not live yet.
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("waiting", False)
    assert status.files.removed == ["old.py"] and status.files.lingering == ["old.py"]
    assert "old_a, old_b of old.py" in status.detail and NEW in status.detail
    assert status.removed_dags == []
    assert _observe(deploy, follower).state == "waiting"

    airflow.drop_file("old.py")
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("parsed", True)
    assert status.files.lingering == [] and status.removed_dags == ["old_a", "old_b"]
    assert status.dags == ["etl"]
    assert "removed files are gone" in status.detail


def test_a_removed_dag_now_defined_by_a_new_file_is_not_awaited_as_gone(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("etl", "old.py", OLD)
    deploy = plan(
        {"new.py": "n1"}, {"old.py": "o1"}, ("new.py",), defines=("new.py",), removed=("old.py",)
    )
    assert _observe(deploy, follower).files.lingering == ["old.py"]
    # Airflow parsed the new file at the version: the DAG moved there (not stale).
    airflow.add_dag("etl", "new.py", NEW)
    status = _observe(deploy, follower)
    assert (status.state, status.files.lingering) == ("parsed", [])
    assert status.dags == ["etl"]


def test_changed_files_parsed_while_a_removed_dag_is_listed_is_not_parsed_yet(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("etl", "etl.py", OLD)
    airflow.add_dag("old", "old.py", OLD)
    deploy = plan(
        {"etl.py": "e2"}, {"etl.py": "e1", "old.py": "o1"}, ("etl.py",), defines=("etl.py",),
        removed=("old.py",),
    )  # fmt: skip
    airflow.add_dag("etl", "etl.py", NEW)
    status = _observe(deploy, follower)
    assert (status.state, status.done, status.files.pending) == ("picked_up", False, [])
    assert "still lists DAG old of old.py" in status.detail
    airflow.drop_file("old.py")
    assert _observe(deploy, follower).state == "parsed"


def test_a_removal_superseded_before_airflow_dropped_it(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    airflow.add_dag("old", "old.py", OLD)
    deploy = plan({}, {"old.py": "o1"}, (), removed=("old.py",), current=False)
    status = _observe(deploy, follower)
    assert (status.state, status.done) == ("superseded", True)


def test_many_removed_dags_are_checked_by_listing_the_bundle(
    airflow: FakeAirflow, follower: AirflowFollower
) -> None:
    before = {f"gen_{i:02}.py": f"g{i}" for i in range(30)}
    for path in before:
        airflow.add_dag(path.removesuffix(".py"), path, OLD)
    deploy = plan({}, before, (), removed=tuple(before))
    assert _observe(deploy, follower).state == "waiting"
    for path in before:
        airflow.drop_file(path)
    status = _observe(deploy, follower)
    assert status.state == "parsed" and len(status.removed_dags) == 30
    assert airflow.dag_lookups() == 0, "30 DAGs are more than are asked for one by one"
