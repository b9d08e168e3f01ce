"""DagshipDagBundle against a real dagship server, instantiated the way Airflow does it."""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dagship.core.manifest import EMPTY_VERSION
from tests import helpers
from tests.helpers import Api, Server, entry, sha256, unique

# Airflow reads its configuration and binds its database when first imported, and reads
# AIRFLOW__* variables again on every lookup: give it private folders while this module runs,
# without leaking them into other tests' subprocesses.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="dagship-bundle-airflow-"))
# Removed when the test process ends: Airflow's engine in this process is bound to its database.
atexit.register(shutil.rmtree, _AIRFLOW_HOME, True)
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(_AIRFLOW_HOME / "bundles"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
}
with pytest.MonkeyPatch.context() as _mp:
    for _key, _value in AIRFLOW_ENV.items():
        _mp.setenv(_key, _value)
    from dagship.airflow.blobcache import BundleError
    from dagship.airflow.bundle import DagshipDagBundle, _claims_force_refresh


@pytest.fixture(scope="module", autouse=True)
def airflow_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AIRFLOW_ENV.items():
            mp.setenv(key, value)
        yield


LOGGER = "dagship.airflow.bundle"
Files = Mapping[str, bytes | tuple[bytes, bool]]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("bundle-home"))
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("DAGSHIP_API_TOKEN", raising=False)
    return monkeypatch


def deploy(api: Api, name: str, files: Files) -> str:
    """Deploy ``files`` (bytes, or (bytes, executable)) as the DAG bundle; return its version."""
    manifest = []
    for path, value in sorted(files.items()):
        data, executable = value if isinstance(value, tuple) else (value, False)
        api.upload(data)
        manifest.append(entry(path, data, executable))
    r = api.post(
        f"/deployments/{name}/deploys",
        json={"kind": "dags", "origin": "cli", "dags_manifest": manifest},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["dags_version"])


def setup_deployment(srv: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, str]:
    api = srv.api()
    name = api.create_deployment()["name"]
    monkeypatch.setenv("DAGSHIP_API_TOKEN", api.create_token("viewer", name))
    return api, name


def make_bundle(srv: Server, deployment: str, **kwargs: Any) -> DagshipDagBundle:
    """A bundle that asks the server on every refresh(), as these tests call it by hand; the
    listener (a deploy reaches refresh() a moment after it lands) has tests of its own."""
    kwargs.setdefault("name", unique("b"))
    kwargs.setdefault("listen", False)
    return DagshipDagBundle(url=srv.url, deployment=deployment, refresh_interval=1, **kwargs)


def version_of_bundle(bundle: DagshipDagBundle) -> str | None:
    """The version get_current_version() names: a BundleVersion's (Airflow 3.3+), or the plain
    string Airflow 3.0 to 3.2 take."""
    current = bundle.get_current_version()
    return str(getattr(current, "version", current)) if current else None


def airflow_takes(argument: str) -> bool:
    """Whether this Airflow's BaseDagBundle takes ``argument`` (view_url_template: 3.1+)."""
    from airflow.dag_processing.bundles.base import BaseDagBundle

    return argument in inspect.signature(BaseDagBundle.__init__).parameters


def refresh_until(bundle: DagshipDagBundle, version: str, timeout: float = 10.0) -> float:
    """Call refresh() the way Airflow's DAG processor loop does until ``version`` is current;
    return how long that took."""
    start = time.monotonic()
    while version_of_bundle(bundle) != version:
        assert time.monotonic() - start < timeout, f"{version} did not arrive in {timeout}s"
        bundle.refresh()
        time.sleep(0.02)
    return time.monotonic() - start


def server_asked(srv: Server, name: str) -> int:
    """How often the server was asked for the current DAG version other than by a listener."""
    log = srv.log_path.read_text(errors="replace")
    return log.count(f"GET /api/v1/deployments/{name}/dags/current HTTP")


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & 0o111))
        for p in root.rglob("*")
        if p.is_file()
    }


def expected(files: Files) -> dict[str, tuple[bytes, bool]]:
    return {p: v if isinstance(v, tuple) else (v, False) for p, v in files.items()}


def dag_files(n: int, mark: str = "") -> dict[str, bytes]:
    return {f"team_{i % 5}/dag_{i}.py": f"# dag {i} {mark}\n".encode() for i in range(n)}


def trees(bundle: DagshipDagBundle) -> list[str]:
    """Tree folders, waiting for old trees being deleted in the background to go."""
    deadline = time.monotonic() + 10
    while True:
        names = sorted(p.name for p in bundle.trees_dir.iterdir())
        if not any(n.startswith(".deleting-") for n in names) or time.monotonic() > deadline:
            return names
        time.sleep(0.05)


def cache_count(bundle: DagshipDagBundle) -> int:
    return sum(1 for p in bundle.cache.root.glob("??/*") if p.is_file())


# --------------------------------------------------------------------------- materializing


def test_first_refresh_materializes_the_deployed_files(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    files: Files = {
        "dag_a.py": b"print('a')\n",
        "pkg/__init__.py": b"",
        "pkg/deep/helpers.py": b"X = 1\n",
        "scripts/run.sh": (b"#!/bin/sh\necho hi\n", True),
        "sql/report.sql": b"select 1;\n",
    }
    version = deploy(api, name, files)
    bundle = make_bundle(srv, name)
    assert bundle.get_current_version() is None
    bundle.initialize()
    assert bundle.path == bundle.base_dir / "current" and bundle.path.is_symlink()
    assert snapshot(bundle.path) == expected(files)
    assert version_of_bundle(bundle) == version
    # Executable files get their own inode; plain ones are linked to the read-only cache.
    assert (bundle.path / "dag_a.py").stat().st_mode & 0o222 == 0
    assert (bundle.path / "dag_a.py").stat().st_nlink == 2


def _counted(
    bundle: DagshipDagBundle, batches: bool = True, inline: bool = True
) -> helpers.CountingTransport:
    """The bundle's requests to the server, counted (``batches=False``, ``inline=False``: an
    older server)."""
    from dagship.client.api import ApiClient

    counter = helpers.CountingTransport(batches, inline)
    bundle._client = ApiClient(bundle.url, bundle._token(), transport=counter)
    return counter


def _following(
    srv: Server, token_env: Any, files: dict[str, bytes], inline: bool = True
) -> tuple[Api, str, DagshipDagBundle, helpers.CountingTransport]:
    """A deployment at ``files`` and a bundle that materialized it, its requests counted from
    then on (``inline=False``: a server without inline blobs)."""
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, files)
    bundle = make_bundle(srv, name)
    bundle.initialize()
    return api, name, bundle, _counted(bundle, inline=inline)


def test_the_first_materialization_downloads_in_one_batch(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    files = dag_files(40, unique())
    deploy(api, name, files)
    bundle = make_bundle(srv, name)
    counter = _counted(bundle)
    bundle.initialize()
    assert snapshot(bundle.path) == expected(files)
    assert counter.count("POST /api/v1/blobs/batch") == 1
    assert counter.count("GET /api/v1/blobs/") == 0
    assert list(bundle.cache.tmp.iterdir()) == []


def test_an_older_server_without_batches_gets_one_request_per_blob(
    srv: Server, token_env: Any
) -> None:
    api, name = setup_deployment(srv, token_env)
    files = dag_files(6, unique())
    deploy(api, name, files)
    bundle = make_bundle(srv, name)
    counter = _counted(bundle, batches=False, inline=False)
    bundle.initialize()
    assert snapshot(bundle.path) == expected(files)
    assert counter.count("POST /api/v1/blobs/batch") == 1
    assert counter.count("GET /api/v1/blobs/") == 6
    # Remembered: the next version asks for its blobs one by one straight away.
    changed = {**files, "team_0/dag_0.py": b"changed\n", "team_1/dag_1.py": b"changed too\n"}
    deploy(api, name, changed)
    bundle.refresh()
    assert snapshot(bundle.path) == expected(changed)
    assert counter.count("POST /api/v1/blobs/batch") == 1
    assert counter.count("GET /api/v1/blobs/") == 8


def test_a_deploys_new_files_come_in_its_answer_without_a_download(
    srv: Server, token_env: Any
) -> None:
    v1 = dag_files(6, unique())
    api, name, bundle, counter = _following(srv, token_env, v1)
    v2 = {**v1, "team_0/dag_0.py": b"changed\n", "team_9/new.py": b"new\n"}
    version = deploy(api, name, v2)
    bundle.refresh()
    assert version_of_bundle(bundle) == version
    assert snapshot(bundle.path) == expected(v2)
    assert counter.count("GET /api/v1/deployments/") == 1
    assert counter.count("POST /api/v1/blobs/batch") == counter.count("GET /api/v1/blobs/") == 0
    assert bundle.cache.has(sha256(b"changed\n")) and bundle.cache.has(sha256(b"new\n"))
    assert list(bundle.cache.tmp.iterdir()) == []


def test_an_older_server_without_inline_blobs_gets_them_downloaded(
    srv: Server, token_env: Any
) -> None:
    v1 = dag_files(6, unique())
    api, name, bundle, counter = _following(srv, token_env, v1, inline=False)
    v2 = {**v1, "team_0/dag_0.py": b"changed again\n", "team_9/new.py": b"new again\n"}
    deploy(api, name, v2)
    bundle.refresh()
    assert snapshot(bundle.path) == expected(v2)
    assert counter.count("POST /api/v1/blobs/batch") == 1


def test_inline_content_that_does_not_match_its_digest_is_refused(
    make_server: Any, token_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The store's copy is damaged keeping its size: the server reads it into the answer as it
    # is, and the bundle refuses it, downloads the blob instead, and refuses that too.
    server = make_server()
    v1 = {"a.py": b"a\n", "b.py": b"b1\n"}
    api, name, bundle, counter = _following(server, token_env, v1)
    good = version_of_bundle(bundle)
    deploy(api, name, {**v1, "b.py": b"b2\n"})
    digest = sha256(b"b2\n")
    blob = server.stored_blob_files()[digest]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"ev\n")
    with caplog.at_level(logging.WARNING, logger="dagship.airflow"):
        bundle.refresh()
    assert version_of_bundle(bundle) == good
    assert snapshot(bundle.path) == expected(v1)
    assert not bundle.cache.has(digest)
    assert list(bundle.cache.tmp.iterdir()) == []
    refused = [r.getMessage() for r in caplog.records if "sent inline" in r.getMessage()]
    assert len(refused) == 1 and digest in refused[0] and "'b.py'" in refused[0]
    assert counter.count("POST /api/v1/blobs/batch") == 1
    # Repaired on the server: the next refresh takes the new version, inline.
    blob.write_bytes(b"b2\n")
    bundle.refresh()
    assert snapshot(bundle.path) == expected({**v1, "b.py": b"b2\n"})
    assert counter.count("POST /api/v1/blobs/batch") == 1


def test_deployment_without_deploys_is_an_empty_tree(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    bundle = make_bundle(srv, name)
    bundle.initialize()
    assert bundle.path.is_dir() and list(bundle.path.iterdir()) == []
    assert version_of_bundle(bundle) == EMPTY_VERSION
    deploy(api, name, {"a.py": b"a\n"})
    bundle.refresh()
    assert snapshot(bundle.path) == {"a.py": (b"a\n", False)}


def test_unknown_deployment_fails_initialize_clearly(srv: Server, token_env: Any) -> None:
    token_env.setenv("DAGSHIP_API_TOKEN", srv.admin_token)
    bundle = make_bundle(srv, "no-such-deployment")
    with pytest.raises(Exception, match="no local copy of deployment 'no-such-deployment'"):
        bundle.initialize()


def test_one_changed_file_downloads_one_blob_and_swaps_atomically(
    srv: Server, token_env: Any
) -> None:
    api, name = setup_deployment(srv, token_env)
    versions = [dag_files(300, "v0")]
    for i in range(1, 6):
        versions.append({**versions[-1], "team_1/dag_1.py": f"# dag 1 v{i}\n".encode()})
    deploy(api, name, versions[0])
    bundle = make_bundle(srv, name)
    bundle.initialize()
    allowed = {p: {v[p] for v in versions} for p in versions[0]}
    problems: list[str] = []
    stop = threading.Event()
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            for path in allowed:
                try:
                    data = (bundle.path / path).read_bytes()
                except OSError as exc:
                    problems.append(f"{path}: {exc}")
                    continue
                if data not in allowed[path]:
                    problems.append(f"{path}: unexpected {data!r}")
            reads += 1

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for files in versions[1:]:
            before = cache_count(bundle)
            version = deploy(api, name, files)
            bundle.refresh()
            assert cache_count(bundle) == before + 1
            assert version_of_bundle(bundle) == version
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert reads > 0
    assert snapshot(bundle.path) == expected(versions[-1])
    # Only the current tree, the one before it and the spare the next version is made from
    # (reuse.py) are kept.
    assert len(trees(bundle)) == 3
    assert list(bundle.tmp_dir.iterdir()) == []


def test_changed_files_get_fresh_mtimes_unchanged_keep_theirs(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    v1 = {"a.py": b"a1\n", "b.py": b"b\n", "c.py": b"same\n", "d.py": b"same\n"}
    deploy(api, name, v1)
    bundle = make_bundle(srv, name)
    bundle.initialize()
    # Age every file so that "fresh" is unambiguous.
    old = time.time_ns() - 3600 * 10**9
    for path in v1:
        os.utime(bundle.path / path, ns=(old, old), follow_symlinks=False)

    def mtimes() -> dict[str, int]:
        return {p: (bundle.path / p).stat().st_mtime_ns for p in v1}

    start = time.time_ns()
    deploy(api, name, {**v1, "a.py": b"a2\n"})
    bundle.refresh()
    after = mtimes()
    assert after["a.py"] >= start
    assert all(after[p] == old for p in ("b.py", "c.py", "d.py"))
    # Back to content seen before (a rollback): its cache blob has an old mtime, yet the file
    # must look changed, and nothing else may be touched.
    cached_a1 = bundle.cache.path(sha256(b"a1\n"))
    cached_mtime = cached_a1.stat().st_mtime_ns
    start = time.time_ns()
    deploy(api, name, {**v1, "c.py": b"other\n"})
    bundle.refresh()
    after = mtimes()
    assert after["a.py"] >= start and after["c.py"] >= start
    assert after["b.py"] == old and after["d.py"] == old
    assert cached_a1.stat().st_mtime_ns == cached_mtime


def test_unchanged_version_is_a_304_and_downloads_nothing(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, dag_files(20))
    bundle = make_bundle(srv, name)
    bundle.initialize()
    link, count = os.readlink(bundle.path), cache_count(bundle)
    calls: list[str] = []
    client = bundle._api()
    real_get_blob = client.get_blob

    def counting_get_blob(digest: str) -> bytes:
        calls.append(digest)
        return real_get_blob(digest)

    client.get_blob = counting_get_blob  # type: ignore[method-assign]
    bundle.refresh()
    bundle.refresh()
    assert calls == [] and cache_count(bundle) == count and os.readlink(bundle.path) == link


# --------------------------------------------------------------------------- pinned versions


def test_pinned_version_is_materialized_once(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    v1_files: Files = {"a.py": b"v1\n", "run.sh": (b"#!/bin/sh\n", True)}
    v1 = deploy(api, name, v1_files)
    deploy(api, name, {"a.py": b"v2\n"})
    bundle_name = unique("b")
    pinned = make_bundle(srv, name, name=bundle_name, version=v1)
    pinned.initialize()
    assert pinned.path == pinned.versions_dir / v1
    assert snapshot(pinned.path) == expected(v1_files)
    assert version_of_bundle(pinned) == v1
    inode = (pinned.path / "a.py").stat().st_ino
    again = make_bundle(srv, name, name=bundle_name, version=v1)
    again.initialize()
    assert (again.path / "a.py").stat().st_ino == inode
    # A damaged copy (say, a half-finished stale-bundle cleanup) is rebuilt.
    (again.path / "a.py").unlink()
    make_bundle(srv, name, name=bundle_name, version=v1).initialize()
    assert snapshot(again.path) == expected(v1_files)
    # The processor side of the same bundle follows v2 meanwhile.
    latest = make_bundle(srv, name, name=bundle_name)
    latest.initialize()
    assert snapshot(latest.path) == {"a.py": (b"v2\n", False)}


def test_pinned_unknown_version_fails_clearly(srv: Server, token_env: Any) -> None:
    _, name = setup_deployment(srv, token_env)
    bundle = make_bundle(srv, name, version="sha256-" + "0" * 64)
    with pytest.raises(Exception, match="cannot materialize version sha256-0000"):
        bundle.initialize()


# --------------------------------------------------------------------------- concurrency


def test_concurrent_refresh_from_threads_and_processes(
    srv: Server, token_env: Any, tmp_path: Path
) -> None:
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, dag_files(200, "v1"))
    bundle_name = unique("b")
    make_bundle(srv, name, name=bundle_name).initialize()
    final = {**dag_files(200, "v2"), "new.py": b"new\n"}
    deploy(api, name, final)
    script = textwrap.dedent(
        f"""
        from dagship.airflow.bundle import DagshipDagBundle
        for _ in range(3):
            DagshipDagBundle(name={bundle_name!r}, url={srv.url!r}, deployment={name!r}).refresh()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ)) for _ in range(2)
    ]
    shared = make_bundle(srv, name, name=bundle_name)
    errors: list[BaseException] = []

    def work(bundle: DagshipDagBundle) -> None:
        try:
            for _ in range(3):
                bundle.refresh()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(shared,)) for _ in range(2)]
    threads += [
        threading.Thread(target=work, args=(make_bundle(srv, name, name=bundle_name),))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert errors == []
    assert snapshot(shared.path) == expected(final)
    assert len([t for t in trees(shared) if not t.startswith(".")]) == 2
    assert list(shared.tmp_dir.iterdir()) == []


# --------------------------------------------------------------------------- failures


def test_server_down_keeps_the_tree_and_recovers(
    make_server: Any, token_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    api, name = setup_deployment(server, token_env)
    v1 = dag_files(10, "v1")
    deploy(api, name, v1)
    bundle = make_bundle(server, name)
    bundle.initialize()
    port = server.port
    server.stop()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bundle.refresh()
    assert snapshot(bundle.path) == expected(v1)
    assert any(
        "keeping version" in r.getMessage() and "cannot reach" in r.getMessage()
        for r in caplog.records
    ), caplog.text
    # Back on the same address, the next version arrives.
    token_env.setattr(helpers, "free_port", lambda: port)
    server.start()
    v2 = {**v1, "team_0/dag_0.py": b"v2\n"}
    version = deploy(server.api(), name, v2)
    bundle.refresh()
    assert snapshot(bundle.path) == expected(v2)
    assert version_of_bundle(bundle) == version


def test_server_down_with_nothing_local_raises(make_server: Any, token_env: Any) -> None:
    server = make_server()
    _, name = setup_deployment(server, token_env)
    server.stop()
    bundle = make_bundle(server, name)
    with pytest.raises(Exception, match="cannot reach the dagship server"):
        bundle.initialize()


@pytest.mark.parametrize("corrupt", [b"ev\n", b"evil bytes\n"], ids=["same-size", "other-size"])
def test_corrupt_blob_is_refused_and_the_last_good_version_kept(
    make_server: Any, token_env: Any, caplog: pytest.LogCaptureFixture, corrupt: bytes
) -> None:
    # Same size: the server streams it and the bundle's digest check refuses it; another size:
    # the server breaks off the response. Either way the warning names the file and blob.
    server = make_server()
    api, name = setup_deployment(server, token_env)
    v1 = {"a.py": b"a\n", "b.py": b"b1\n"}
    good = deploy(api, name, v1)
    bundle = make_bundle(server, name)
    bundle.initialize()
    deploy(api, name, {**v1, "b.py": b"b2\n"})
    digest = sha256(b"b2\n")
    blob = server.stored_blob_files()[digest]
    os.chmod(blob, 0o644)
    blob.write_bytes(corrupt)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        bundle.refresh()
    assert snapshot(bundle.path) == expected(v1)
    assert version_of_bundle(bundle) == good
    assert not bundle.cache.has(digest)
    message = next(r.getMessage() for r in caplog.records if "keeping version" in r.getMessage())
    assert digest in message and "'b.py'" in message
    # Repaired on the server: the next refresh takes the new version.
    blob.write_bytes(b"b2\n")
    bundle.refresh()
    assert snapshot(bundle.path) == expected({**v1, "b.py": b"b2\n"})


# --------------------------------------------------------------------------- configuration


def test_token_from_a_custom_environment_variable(srv: Server, token_env: Any) -> None:
    api, name = setup_deployment(srv, token_env)
    deploy(api, name, {"a.py": b"a\n"})
    token_env.setenv("MY_DAGSHIP_TOKEN", os.environ.pop("DAGSHIP_API_TOKEN"))
    with pytest.raises(Exception, match=r"(?i)token"):
        make_bundle(srv, name).initialize()
    bundle = make_bundle(srv, name, token_env="MY_DAGSHIP_TOKEN")
    bundle.initialize()
    assert snapshot(bundle.path) == {"a.py": (b"a\n", False)}


@pytest.mark.parametrize("form", ["json", "uri"])
def test_token_from_an_airflow_connection(srv: Server, token_env: Any, form: str) -> None:
    api, name = setup_deployment(srv, token_env)
    token = os.environ.pop("DAGSHIP_API_TOKEN")
    deploy(api, name, {"a.py": b"a\n"})
    conn_id = f"dagship_{form}"
    value = (
        f'{{"conn_type": "http", "password": "{token}"}}'
        if form == "json"
        else f"http://:{token}@dagship"
    )
    token_env.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    bundle = make_bundle(srv, name, conn_id=conn_id)
    bundle.initialize()
    assert snapshot(bundle.path) == {"a.py": (b"a\n", False)}
    with pytest.raises(Exception, match="connection 'missing_conn'"):
        make_bundle(srv, name, conn_id="missing_conn").initialize()


def test_airflows_own_arguments_reach_the_base_bundle(srv: Server, token_env: Any) -> None:
    _, name = setup_deployment(srv, token_env)
    template = "https://dagship.example.com/deployments/prod?version={version}"
    if airflow_takes("view_url_template"):
        bundle = make_bundle(srv, name, view_url_template=template)
        assert (bundle.refresh_interval, bundle.view_url_template()) == (1, template)
    else:
        # Airflow 3.0 has no view_url_template: passing one is a configuration error there.
        with pytest.raises(BundleError, match="does not take 'view_url_template'"):
            make_bundle(srv, name, view_url_template=template)
        bundle = make_bundle(srv, name)
        assert bundle.refresh_interval == 1
    bundle.initialize()
    assert bundle.supports_versioning


@pytest.mark.parametrize(
    ("kwargs", "typo"),
    [
        ({"deployment": "prod", "refresh_intervall": 5}, "refresh_intervall"),
        ({"deploymnet": "prod"}, "deploymnet"),
    ],
)
def test_an_unknown_argument_is_refused(srv: Server, kwargs: dict[str, Any], typo: str) -> None:
    # A typo in dag_bundle_config_list must not quietly leave the setting at its default.
    with pytest.raises(BundleError) as raised:
        DagshipDagBundle(name="typo-bundle", url=srv.url, **kwargs)
    message = str(raised.value)
    assert f"DAG bundle 'typo-bundle' does not take {typo!r}" in message
    for accepted in ("url", "deployment", "listen", "refresh_interval", "version"):
        assert accepted in message
    assert ("view_url_template" in message) == airflow_takes("view_url_template")


def test_url_and_deployment_are_needed(srv: Server) -> None:
    with pytest.raises(BundleError, match="DAG bundle 'half' needs 'deployment'"):
        DagshipDagBundle(name="half", url=srv.url)


def create_parsing_tables() -> None:
    """The tables of Airflow's metadata database that reparse requests write to."""
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.models.errors import ParseImportError

    from airflow import settings

    for model in (DagPriorityParsingRequest, ParseImportError):
        model.__table__.create(settings.engine, checkfirst=True)


def test_changed_dag_files_are_queued_for_priority_parsing(srv: Server, token_env: Any) -> None:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session

    create_parsing_tables()
    api, name = setup_deployment(srv, token_env)
    v1 = {"a.py": b"a\n", "b.py": b"b\n", "notes.md": b"n\n"}
    deploy(api, name, v1)
    bundle = make_bundle(srv, name)
    bundle.initialize()

    def requested() -> set[str]:
        with create_session() as session:
            rows = session.query(DagPriorityParsingRequest).filter_by(bundle_name=bundle.name)
            return {r.relative_fileloc for r in rows}

    assert requested() == set()  # a first materialization is all new files anyway
    deploy(api, name, {**v1, "a.py": b"a2\n", "notes.md": b"n2\n", "c/new.py": b"c\n"})
    bundle.refresh()
    assert requested() == {"a.py", "c/new.py"}
    deploy(api, name, {**v1, "a.py": b"a3\n"})
    bundle.refresh()  # a.py is still pending: not filed twice
    assert requested() == {"a.py", "c/new.py"}


def test_files_that_import_a_changed_module_are_queued_for_priority_parsing(
    srv: Server, token_env: Any
) -> None:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    create_parsing_tables()
    api, name = setup_deployment(srv, token_env)
    v1 = {
        "etl.py": b"from lib.helpers import load\n",
        "report.py": b"import lib\n",
        "other.py": b"import os\n",
        "lib/__init__.py": b"",
        "lib/helpers.py": b"from lib.dates import today\n",
        "lib/dates.py": b"TODAY = 1\n",
    }
    deploy(api, name, v1)
    bundle = make_bundle(srv, name)
    bundle.initialize()

    def requested() -> set[str]:
        with create_session() as session:
            rows = session.query(DagPriorityParsingRequest).filter_by(bundle_name=bundle.name)
            return {r.relative_fileloc for r in rows}

    def import_errors() -> set[str]:
        with create_session() as session:
            rows = session.query(ParseImportError).filter_by(bundle_name=bundle.name)
            return {r.filename for r in rows}

    # What Airflow made of the previous version: etl.py failed through lib/dates.py, and so
    # did other.py, for a reason of its own.
    with create_session() as session:
        for path in ("etl.py", "other.py"):
            session.add(ParseImportError(filename=path, bundle_name=bundle.name, stacktrace="x"))
    # Only the module two imports away changed: its importers are parsed first too, and their
    # import errors, which were about the previous module, are forgotten.
    deploy(api, name, {**v1, "lib/dates.py": b"TODAY = 2\n"})
    bundle.refresh()
    assert requested() == {"lib/dates.py", "lib/helpers.py", "etl.py"}
    assert import_errors() == {"other.py"}


def test_a_deploy_after_start_reads_the_imports_of_its_changed_files_only(
    srv: Server, token_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagship.core import imports

    create_parsing_tables()
    api, name = setup_deployment(srv, token_env)
    v1 = {**dag_files(30, "import os"), "lib/__init__.py": b"", "lib/util.py": b"X = 1\n"}
    deploy(api, name, v1)
    read: list[str] = []
    real = imports.references

    def counting(source: bytes, path: str) -> frozenset[str]:
        read.append(path)
        return real(source, path)

    monkeypatch.setattr(imports, "references", counting)
    bundle = make_bundle(srv, name)
    bundle.initialize()
    # The tree's imports are read on a thread of their own after the start...
    assert bundle._warming is not None
    bundle._warming.join(10)
    assert sorted(read) == sorted(p for p in v1 if p.endswith(".py"))
    # ...so that the first deploy reads only what it changed.
    read.clear()
    deploy(api, name, {**v1, "team_1/dag_1.py": b"import lib.util\n"})
    bundle.refresh()
    assert read == ["team_1/dag_1.py"]
    assert requested_files(bundle) == {"team_1/dag_1.py"}


def test_unused_blobs_leave_the_cache(srv: Server, token_env: Any) -> None:
    token_env.setattr("dagship.airflow.bundle.CACHE_GC_INTERVAL", 0)
    api, name = setup_deployment(srv, token_env)
    contents = [{"a.py": f"a{i}\n".encode(), "b.py": b"b\n"} for i in range(4)]
    first = deploy(api, name, contents[0])
    bundle = make_bundle(srv, name)
    bundle.initialize()
    make_bundle(srv, name, name=bundle.name, version=first).initialize()
    for files in contents[1:]:
        deploy(api, name, files)
        bundle.refresh()
    cached = {p.name for p in bundle.cache.root.glob("??/*")}
    # Blobs of the current tree (a3), the previous one (a2), the spare the next version is
    # made from (a1, reuse.py) and the pinned version (a0) stay.
    assert cached == {sha256(d) for d in (b"a3\n", b"a2\n", b"a1\n", b"a0\n", b"b\n")}


class _BadServer:
    """A tiny HTTP server answering every request with one fixed, broken response."""

    def __init__(self, status: int, body: bytes) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _current(files: bytes) -> bytes:
    """A current-DAG-version answer whose version is not the one of ``files``."""
    head = b'{"deployment": "d", "deploy_id": "dpl_1", "seq": 1, "version": "sha256-'
    return head + b"0" * 64 + b'", "files": ' + files + b"}"


@pytest.mark.parametrize(
    ("status", "body", "needle"),
    [
        (500, b"Internal Server Error", "HTTP 500"),
        (200, b"<html>not json", "Expecting value"),
        (200, _current(b"[]"), "does not match"),
        (
            200,
            _current(b'[{"path": "../x.py", "sha256": "' + b"0" * 64 + b'", "size": 1}]'),
            "'..'",
        ),
        (200, b'{"version": 1, "files": [{"path": "../x.py"}]}', "cannot read"),
    ],
    ids=["5xx", "bad-json", "wrong-version", "bad-manifest", "bad-document"],
)
def test_bad_answers_keep_the_last_good_version(
    srv: Server,
    token_env: Any,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    needle: str,
) -> None:
    api, name = setup_deployment(srv, token_env)
    files = {"a.py": b"a\n"}
    version = deploy(api, name, files)
    good = make_bundle(srv, name)
    good.initialize()
    bad = _BadServer(status, body)
    try:
        bundle = DagshipDagBundle(name=good.name, url=bad.url, deployment=name)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            bundle.refresh()
    finally:
        bad.close()
    assert snapshot(bundle.path) == expected(files)
    assert version_of_bundle(bundle) == version
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "keeping version" in warning and needle in warning, warning


# --------------------------------------------------------------------------- the listener


def wait_connected(bundle: DagshipDagBundle) -> None:
    """Refresh, as the DAG processor's loop does, until the bundle's listener is connected."""
    deadline = time.monotonic() + 5
    while bundle._listener is None or not bundle._listener.connected:
        assert time.monotonic() < deadline, "the listener did not connect"
        bundle.refresh()
        time.sleep(0.05)


def requested_files(bundle: DagshipDagBundle) -> set[str]:
    """The bundle's rows in Airflow's dag_priority_parsing_request (nothing claims them here)."""
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(DagPriorityParsingRequest).filter_by(bundle_name=bundle.name)
        return {r.relative_fileloc for r in rows}


def wait_for_tree(bundle: DagshipDagBundle, version: str) -> Path:
    """The tree of ``version`` under trees/, once the listener's thread has built it."""
    deadline = time.monotonic() + 10
    while True:
        built = [name for name in trees(bundle) if name.startswith(version)]
        if built and bundle._prepared is not None:
            return bundle.trees_dir / built[0]
        assert time.monotonic() < deadline, f"the listener did not build {version}"
        time.sleep(0.02)


def blobs_fetched(srv: Server) -> int:
    log = srv.log_path.read_text(errors="replace")
    return log.count("GET /api/v1/blobs/") + log.count("POST /api/v1/blobs/batch")


def test_listener_builds_a_new_version_and_files_its_parsing_requests_before_refresh(
    srv: Server, token_env: Any, caplog: pytest.LogCaptureFixture
) -> None:
    create_parsing_tables()
    api, name = setup_deployment(srv, token_env)
    v1 = {**dag_files(10, "v1"), "notes.md": b"n\n"}
    deploy(api, name, v1)
    bundle = make_bundle(srv, name, listen=True)
    bundle.initialize()
    wait_connected(bundle)
    assert requested_files(bundle) == set()
    fetched = blobs_fetched(srv)

    v2 = {**v1, "team_1/dag_1.py": b"v2\n", "team_2/new.py": b"new\n", "notes.md": b"n2\n"}
    version = deploy(api, name, v2)
    # No refresh(): the listener's thread builds v2 beside v1 and asks Airflow to parse the
    # changed DAG files first, while Airflow still sees v1. The changed files came in the
    # answer that woke it: nothing was downloaded.
    built = wait_for_tree(bundle, version)
    assert blobs_fetched(srv) == fetched
    if _claims_force_refresh():
        deadline = time.monotonic() + 10
        while requested_files(bundle) != {"team_1/dag_1.py", "team_2/new.py"}:
            assert time.monotonic() < deadline, requested_files(bundle)
            time.sleep(0.02)
    else:
        # Airflow before 3.3 may parse a requested file before it refreshes the bundle: the
        # requests wait for the switch there.
        assert requested_files(bundle) == set()
    assert snapshot(built) == expected(v2)
    assert version_of_bundle(bundle) != version
    assert snapshot(bundle.path) == expected(v1)

    # The next refresh() (the loop that claims those requests) only switches to that tree.
    fetched = blobs_fetched(srv)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        bundle.refresh()
    assert version_of_bundle(bundle) == version
    assert bundle.path.resolve() == built.resolve()
    assert snapshot(bundle.path) == expected(v2)
    assert blobs_fetched(srv) == fetched
    assert any("built when the listener heard of it" in r.getMessage() for r in caplog.records)
    assert requested_files(bundle) == {"team_1/dag_1.py", "team_2/new.py"}
    assert len(trees(bundle)) == 2  # v2 and the v1 it replaced


def test_a_version_superseded_before_the_switch_is_dropped(srv: Server, token_env: Any) -> None:
    create_parsing_tables()
    api, name = setup_deployment(srv, token_env)
    v1 = dag_files(5, "v1")
    deploy(api, name, v1)
    bundle = make_bundle(srv, name, listen=True)
    bundle.initialize()
    wait_connected(bundle)
    v2 = {**v1, "team_1/dag_1.py": b"v2\n"}
    v2_tree = wait_for_tree(bundle, deploy(api, name, v2))
    v3 = {**v1, "team_2/dag_2.py": b"v3\n"}
    version = deploy(api, name, v3)
    v3_tree = wait_for_tree(bundle, version)
    refresh_until(bundle, version)
    assert bundle.path.resolve() == v3_tree.resolve()
    assert snapshot(bundle.path) == expected(v3)
    assert not v2_tree.exists()
    if _claims_force_refresh():
        # Both versions' changes are parsed first: what v2 changed is back to v1's content in
        # v3, but its request was filed when v2 was built.
        assert requested_files(bundle) == {"team_1/dag_1.py", "team_2/dag_2.py"}
    else:
        # Before Airflow 3.3 the requests are filed at the switch, for what v3 changed from v1.
        assert requested_files(bundle) == {"team_2/dag_2.py"}
    assert len(trees(bundle)) == 2


def test_listener_brings_a_deploy_to_the_next_refresh_without_polling(
    srv: Server, token_env: Any
) -> None:
    api, name = setup_deployment(srv, token_env)
    v1 = dag_files(10, "v1")
    deploy(api, name, v1)
    bundle = make_bundle(srv, name, listen=True)
    bundle.initialize()
    # Once the listener is connected, refresh() does not ask the server at all.
    wait_connected(bundle)
    asked = server_asked(srv, name)
    for _ in range(20):
        bundle.refresh()
    assert server_asked(srv, name) == asked
    assert snapshot(bundle.path) == expected(v1)

    v2 = {**v1, "team_1/dag_1.py": b"v2\n"}
    version = deploy(api, name, v2)
    refresh_until(bundle, version)
    assert snapshot(bundle.path) == expected(v2)
    # The listener handed over the new file list: refresh() did not fetch it again.
    assert server_asked(srv, name) == asked


def test_listener_waits_out_a_stopped_server_and_hears_the_next_deploy(
    make_server: Any, token_env: Any
) -> None:
    server = make_server()
    api, name = setup_deployment(server, token_env)
    v1 = dag_files(5, "v1")
    deploy(api, name, v1)
    bundle = make_bundle(server, name, listen=True)
    bundle.initialize()
    bundle.refresh()
    port = server.port
    server.stop()
    for _ in range(5):
        bundle.refresh()  # keeps the tree; no exception escapes
    assert snapshot(bundle.path) == expected(v1)
    token_env.setattr(helpers, "free_port", lambda: port)
    server.start()
    v2 = {**v1, "team_0/dag_0.py": b"v2\n"}
    version = deploy(server.api(), name, v2)
    # The listener backs off while the server is away (up to a few seconds), then hears v2.
    refresh_until(bundle, version, timeout=30)
    assert snapshot(bundle.path) == expected(v2)
