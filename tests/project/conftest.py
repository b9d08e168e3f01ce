from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import Api, Cli, Server


@pytest.fixture(scope="module")
def scan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Scanning is client-side: one SQLite server is enough to read back what was deployed."""
    srv = Server(tmp_path_factory.mktemp("scan-home"), "sqlite")
    try:
        yield srv.start()
    finally:
        srv.close()


@pytest.fixture
def scan_api(scan_server: Server) -> Api:
    return scan_server.api()


@pytest.fixture
def scan_cli(scan_server: Server) -> Cli:
    return Cli(scan_server.url, scan_server.admin_token)
