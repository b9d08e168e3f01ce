"""Fixtures: real dagship servers (SQLite and PostgreSQL), the real CLI, project folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.helpers import BACKENDS, Api, Cli, Server, make_project
from tests.s3_helpers import MotoS3, S3Server


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend for the whole session; tests use unique deployment names."""
    srv = Server(tmp_path_factory.mktemp(f"home-{backend}"), backend)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


@pytest.fixture
def api(server: Server) -> Api:
    return server.api()


@pytest.fixture
def cli(server: Server) -> Cli:
    """The CLI with the admin token of the shared server."""
    return Cli(server.url, server.admin_token)


ServerFactory = Callable[..., Server]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start a private server (for crash tests, size limits); stopped and dropped at teardown."""
    servers: list[Server] = []

    def factory(
        backend: str = "sqlite", env: Mapping[str, str] | None = None, start: bool = True
    ) -> Server:
        srv = Server(tmp_path / f"home-{len(servers)}", backend, env)
        servers.append(srv)
        return srv.start() if start else srv

    try:
        yield factory
    finally:
        for srv in servers:
            srv.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DAGSHIP_CACHE_DIR for the session: uv environments are built once (tests/validate
    and tests/environment use it)."""
    return tmp_path_factory.mktemp("dagship-cache")


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """One real S3 API (moto's server mode) for the whole session; tests use new buckets."""
    s3 = MotoS3(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        yield s3
    finally:
        s3.close()


@pytest.fixture(scope="session")
def s3_server(
    backend: str, moto_s3: MotoS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """One server per backend whose blobs are in S3, shared like `server`."""
    srv = S3Server(tmp_path_factory.mktemp(f"home-s3-{backend}"), moto_s3, backend)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


# The slowest test modules, slowest first, as measured (`--durations`, junit times summed per
# module; most start an Airflow). Run in this order, each whole on one worker (`--dist loadfile
# --no-loadscope-reorder` in scripts/test), they start at once and the short modules fill the
# gaps at the end, instead of a long module starting last and running alone.
SLOWEST_MODULES = (
    "tests/agent/standalone_test.py",
    "tests/agent/celery_test.py",
    "tests/compat/airflow_versions_test.py",
    "tests/compat/settings_versions_test.py",
    "tests/integrations/commands_test.py",
    "tests/cli/quickstart_test.py",
    "tests/server/crash_test.py",
    "tests/airflow/airflow30_deploy_test.py",
    "tests/airflow/bundle_test.py",
    "tests/airflow/airflow_deploy_test.py",
    "tests/validate/pytest_runner_test.py",
    "tests/agent/settings_test.py",
    "tests/environment/airflow_test.py",
    "tests/server/airflow_access_test.py",
    "tests/airflow/promote_wait_test.py",
    "tests/validate/pytest_compat_test.py",
    "tests/airflow/s3_airflow_test.py",
    "tests/environment/build_test.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: n for n, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
